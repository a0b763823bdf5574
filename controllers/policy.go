package controllers

import (
	"context"
	"encoding/asn1"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
	"github.com/pq-issuer/pq-issuer/signer"
)

// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// policyOf turns an issuer's spec into the builder's policy. Errors name the spec field, for the
// issuer's Ready condition.
func policyOf(kind IssuerKind, spec *v1alpha1.IssuerSpec) (signer.Policy, error) {
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
			pol.SPIFFEAnyNamespace = p.SPIFFE.AllowAnyNamespace && kind.ClusterScoped
		}
		if _, err := metav1.LabelSelectorAsSelector(p.NamespaceSelector); err != nil {
			return pol, fmt.Errorf("spec.policy.namespaceSelector: %w", err)
		}
	}
	if err := pol.Validate(); err != nil {
		return pol, fmt.Errorf("spec.%w", err)
	}
	return pol, nil
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

// namesOf is the issuer's status.names.
func namesOf(pol *signer.Policy) string {
	if pol.Restricted() {
		return v1alpha1.NamesRestricted
	}
	return v1alpha1.NamesUnrestricted
}

// checkNamespace refuses a request from a namespace a PQClusterIssuer's namespaceSelector does not
// select.
func checkNamespace(ctx context.Context, c client.Reader, kind IssuerKind, issuer v1alpha1.Issuer, namespace string) error {
	p := issuer.GetSpec().Policy
	if !kind.ClusterScoped || p == nil || p.NamespaceSelector == nil {
		return nil
	}
	selector, err := metav1.LabelSelectorAsSelector(p.NamespaceSelector)
	if err != nil { // the issuer is not Ready with such a selector: it changed since
		return pending("Waiting for %s %s: its spec.policy.namespaceSelector cannot be used: %v", kind.Name, issuer.GetName(), err)
	}
	ns := &metav1.PartialObjectMetadata{}
	ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	if err := c.Get(ctx, types.NamespacedName{Name: namespace}, ns); err != nil {
		return fmt.Errorf("reading namespace %s: %w", namespace, err)
	}
	if !selector.Matches(labels.Set(ns.GetLabels())) {
		return permanent(string(signer.ReasonPolicyViolation), "namespace %s is not selected by %s %s's spec.policy.namespaceSelector (%s); request from a selected namespace, or label this one", namespace, kind.Name, issuer.GetName(), selector)
	}
	return nil
}
