package signer

import (
	"errors"
	"fmt"
)

// Reason is a machine-readable cause, CamelCase so that the controllers can
// use it as a Kubernetes condition reason as it is.
type Reason string

// Reasons for a CA that cannot be used.
const (
	ReasonCertificateMissing   Reason = "CertificateMissing"
	ReasonInvalidCertificate   Reason = "InvalidCertificate"
	ReasonKeyMissing           Reason = "KeyMissing"
	ReasonInvalidKey           Reason = "InvalidKey"
	ReasonUnsupportedKeyFormat Reason = "UnsupportedKeyFormat"
	ReasonUnsupportedAlgorithm Reason = "UnsupportedAlgorithm"
	ReasonHashMLDSA            Reason = "HashMLDSANotAllowed"
	ReasonKeyInconsistent      Reason = "KeyInconsistent"
	ReasonKeyMismatch          Reason = "KeyMismatch"
	ReasonNotACA               Reason = "NotACA"
	ReasonExpired              Reason = "Expired"
	ReasonNotYetValid          Reason = "NotYetValid"
	ReasonBrokenChain          Reason = "BrokenChain"
	ReasonInvalidCSR           Reason = "InvalidCSR"
	ReasonBadCSRSignature      Reason = "BadCSRSignature"
	ReasonWeakKey              Reason = "WeakKey"
	ReasonUnsupportedKey       Reason = "UnsupportedKey"
	ReasonPolicyViolation      Reason = "PolicyViolation"
)

// Error is a failure the caller cannot fix by retrying: the input is wrong.
// Message is written for `kubectl describe`: what is wrong and what to do.
type Error struct {
	Reason  Reason
	Message string
}

func (e *Error) Error() string { return e.Message }

func newError(r Reason, format string, args ...any) *Error {
	return &Error{Reason: r, Message: fmt.Sprintf(format, args...)}
}

// ReasonOf returns the Reason of a signer error, or "" for any other error.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}
