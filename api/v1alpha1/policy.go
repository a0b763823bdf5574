package v1alpha1

import (
	"encoding/asn1"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pq-issuer/pq-issuer/signer"
)

// SignerPolicy turns the spec into the certificate builder's policy, the one the controller and
// `kubectl pq sign --issuer` both apply. clusterScoped says whether the spec is a PQClusterIssuer's:
// only those may let SPIFFE IDs name any namespace. Errors name the spec field, for the issuer's
// Ready condition. The namespace selector needs the cluster and is the controller's to apply.
func (spec *IssuerSpec) SignerPolicy(clusterScoped bool) (signer.Policy, error) {
	var pol signer.Policy
	if spec.MaxDuration != nil {
		if spec.MaxDuration.Duration <= 0 {
			return pol, fmt.Errorf("spec.maxDuration %s is not positive: set a duration such as 720h, or remove it for the default %s", spec.MaxDuration.Duration, signer.DefaultMaxDuration)
		}
		pol.MaxDuration = spec.MaxDuration.Duration
	}
	if p := spec.Policy; p != nil {
		pol.DNSNames, pol.URIs, pol.Emails, pol.CommonNames = p.DNSNames, p.URIs, p.Emails, p.CommonNames
		pol.Usages, pol.MinRSABits = p.Usages, p.MinRSAKeySize
		for _, r := range p.IPRanges {
			prefix, err := netip.ParsePrefix(r)
			if err != nil {
				return pol, fmt.Errorf("spec.policy.ipRanges: %q is not a CIDR range such as 10.0.0.0/8", r)
			}
			pol.IPRanges = append(pol.IPRanges, prefix.Masked())
		}
		for _, o := range p.OtherNames {
			oid, err := parseOID(o)
			if err != nil {
				return pol, fmt.Errorf("spec.policy.otherNames: %q is not an OID such as 1.3.6.1.4.1.311.20.2.3", o)
			}
			pol.OtherNames = append(pol.OtherNames, oid)
		}
		for _, a := range p.KeyAlgorithms {
			pol.KeyAlgorithms = append(pol.KeyAlgorithms, signer.KeyAlgorithm(a))
		}
		if p.SPIFFE != nil {
			pol.TrustDomain = p.SPIFFE.TrustDomain
			// The CRD refuses it on a PQIssuer; a namespaced issuer never gets it, whatever the API server did.
			pol.SPIFFEAnyNamespace = p.SPIFFE.AllowAnyNamespace && clusterScoped
			pol.SPIFFERequesterBound = p.SPIFFE.RequesterBound
		}
		if _, err := metav1.LabelSelectorAsSelector(p.NamespaceSelector); err != nil {
			return pol, fmt.Errorf("spec.policy.namespaceSelector: %w", err)
		}
	}
	if pc := spec.PodCertificates; pc != nil {
		pol.WorkloadDNSNames = pc.DNSNames
		if d := pc.MaxDuration; d != nil && (d.Duration < signer.MinDuration || d.Duration > MaxPodCertificateDuration) {
			return pol, fmt.Errorf("spec.podCertificates.maxDuration %s is outside %s-%s, the lifetimes Kubernetes accepts for a pod certificate", d.Duration, signer.MinDuration, MaxPodCertificateDuration)
		}
	}
	if err := pol.Validate(); err != nil {
		return pol, fmt.Errorf("spec.%w", err)
	}
	return pol, nil
}

// Pod certificate lifetimes: the default cap, and the API server's largest maxExpirationSeconds
// (91 days).
const (
	DefaultPodCertificateDuration = 24 * time.Hour
	MaxPodCertificateDuration     = 91 * 24 * time.Hour
)

// PodCertificateMaxDuration is the longest lifetime of this issuer's pod certificates.
func (spec *IssuerSpec) PodCertificateMaxDuration() time.Duration {
	if pc := spec.PodCertificates; pc != nil && pc.MaxDuration != nil {
		return pc.MaxDuration.Duration
	}
	return DefaultPodCertificateDuration
}

func parseOID(s string) (asn1.ObjectIdentifier, error) {
	var oid asn1.ObjectIdentifier
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return nil, errors.New("too short")
	}
	for _, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad arc %q", p)
		}
		oid = append(oid, n)
	}
	return oid, nil
}

// NamesOf is what status.names says of a policy.
func NamesOf(pol *signer.Policy) string {
	if pol.Restricted() {
		return NamesRestricted
	}
	return NamesUnrestricted
}
