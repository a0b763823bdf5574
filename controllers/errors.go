package controllers

import "fmt"

// The three ways a CertificateRequest can fail to be signed, after issuer-lib. Anything else is
// transient: the request stays Pending and is retried with backoff.

// PermanentError is a request that can never be signed as it is (bad CSR, policy violation): the
// request becomes Failed and is not retried.
type PermanentError struct {
	Reason string
	Err    error
}

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// PendingError is a request that waits for something outside it to change (its issuer to appear or
// become ready): it stays Pending and is retried when the issuer changes.
type PendingError struct {
	Err error
}

func (e *PendingError) Error() string { return e.Err.Error() }
func (e *PendingError) Unwrap() error { return e.Err }

// IssuerError is a problem with the issuer's CA found while signing (its Secret changed since the
// issuer was checked): the request waits like a PendingError, and the issuer is checked again.
type IssuerError struct {
	Err error
}

func (e *IssuerError) Error() string { return e.Err.Error() }
func (e *IssuerError) Unwrap() error { return e.Err }

func permanent(reason string, format string, args ...any) error {
	return &PermanentError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

func pending(format string, args ...any) error {
	return &PendingError{Err: fmt.Errorf(format, args...)}
}
