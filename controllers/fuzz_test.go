package controllers

import (
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
	"github.com/pq-issuer/pq-issuer/internal/testkeys"
	"github.com/pq-issuer/pq-issuer/signer"
)

// FuzzCertificateRequest reconciles an approved request with arbitrary CSR bytes, duration, isCA
// and usages against a ready issuer: whatever comes in, the reconcile returns no error (bad input
// is not worth a retry) and the request ends Issued with a certificate that verifies, or Failed
// with failureTime and a reason in its message.
func FuzzCertificateRequest(f *testing.F) {
	start := time.Now().UTC().Truncate(time.Second)
	ca := newRootCA(f, signer.MLDSA65, start, 365*24*time.Hour)
	good := newCSRPEM(f, testkeys.New(f, "ECDSA-P256"))
	f.Add(good, int64(3600), false, uint16(0))
	f.Add(good, int64(0), false, uint16(1))
	f.Add(good, int64(-60), true, uint16(0xffff))
	f.Add(newCSRPEM(f, testkeys.New(f, "ML-DSA-44")), int64(86400), false, uint16(7))
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"), int64(60), false, uint16(2))
	f.Add([]byte{}, int64(1), false, uint16(0))
	usageNames := []cmapi.KeyUsage{cmapi.UsageDigitalSignature, cmapi.UsageKeyEncipherment, cmapi.UsageServerAuth, cmapi.UsageClientAuth,
		cmapi.UsageCertSign, cmapi.UsageDataEncipherment, cmapi.UsageKeyAgreement, cmapi.UsageCodeSigning, "no such usage"}

	f.Fuzz(func(t *testing.T, csr []byte, seconds int64, isCA bool, usageBits uint16) {
		clk := newTestClock(t)
		clk.SetTime(start.Add(time.Hour))
		var usages []cmapi.KeyUsage
		for i, u := range usageNames {
			if usageBits&(1<<i) != 0 {
				usages = append(usages, u)
			}
		}
		cr := approvedRequest(t, withCSR(csr), withIsCA(isCA), withUsages(usages...),
			withDuration(time.Duration(seconds)*time.Second))
		issuerKey := types.NamespacedName{Namespace: testNamespace, Name: issuerName}
		env := newTestEnv(t, clk, withObjects(newIssuer(PQIssuerKind, issuerKey), newSecret(testNamespace, caSecret, withCAData(ca)), cr))
		if _, err := env.reconcileIssuer(t, PQIssuerKind, issuerKey); err != nil {
			t.Fatal(err)
		}
		crKey := types.NamespacedName{Namespace: cr.Namespace, Name: cr.Name}
		if _, err := env.reconcileRequest(t, crKey); err != nil {
			t.Fatalf("reconcile returned %v: bad input must not be retried", err)
		}
		got := env.getRequest(t, crKey)
		ready := requestReady(got)
		switch {
		case ready == nil:
			t.Fatal("no Ready condition")
		case ready.Reason == cmapi.CertificateRequestReasonIssued:
			verifyIssued(t, got, clk.Now())
		case ready.Reason == cmapi.CertificateRequestReasonFailed:
			if got.Status.FailureTime == nil || ready.Message == "" {
				t.Fatalf("Failed without failureTime or message: %+v", got.Status)
			}
		default:
			t.Fatalf("Ready reason %s (%s), want Issued or Failed", ready.Reason, ready.Message)
		}
	})
}

// FuzzIssuerCASecret checks an issuer whose Secret holds arbitrary tls.crt and tls.key bytes: the
// reconcile returns no error and Ready gets a reason, True only for a usable CA.
func FuzzIssuerCASecret(f *testing.F) {
	start := time.Now().UTC().Truncate(time.Second)
	ca := newRootCA(f, signer.MLDSA44, start, 365*24*time.Hour)
	f.Add(ca.CertPEM, ca.KeyPEM)
	f.Add(ca.KeyPEM, ca.CertPEM)
	f.Add(ca.CertPEM, []byte{})
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), ca.KeyPEM)
	f.Fuzz(func(t *testing.T, certPEM, keyPEM []byte) {
		clk := newTestClock(t)
		clk.SetTime(start.Add(time.Hour))
		key := types.NamespacedName{Namespace: testNamespace, Name: issuerName}
		secret := newSecret(testNamespace, caSecret, withTLS(certPEM, keyPEM))
		env := newTestEnv(t, clk, withObjects(newIssuer(PQIssuerKind, key), secret))
		if _, err := env.reconcileIssuer(t, PQIssuerKind, key); err != nil {
			t.Fatalf("reconcile returned %v: a bad Secret must not be retried", err)
		}
		issuer := env.getIssuer(t, PQIssuerKind, key)
		ready := meta.FindStatusCondition(issuer.GetStatus().Conditions, v1alpha1.ConditionReady)
		if ready == nil || ready.Reason == "" || ready.Message == "" {
			t.Fatalf("Ready condition %+v, want a reason and a message", ready)
		}
		if (ready.Status == metav1.ConditionTrue) != (ready.Reason == v1alpha1.ReasonVerified) {
			t.Fatalf("Ready %s with reason %s", ready.Status, ready.Reason)
		}
	})
}
