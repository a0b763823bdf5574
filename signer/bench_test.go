package signer

import (
	"testing"
	"time"

	"github.com/pq-issuer/pq-issuer/internal/testkeys"
)

// BenchmarkIssue measures one leaf issuance (template to verified PEM chain)
// and, interleaved in the same loop so machine noise hits both alike, one raw
// circl signature by the same CA key over a message of the leaf's TBS size.
// The issue/raw-sign metric is their ratio: what the certificate machinery
// costs on top of the unavoidable ML-DSA signature.
func BenchmarkIssue(b *testing.B) {
	for _, alg := range Algorithms() {
		ca := newRoot(b, alg, 24*time.Hour)
		for _, leaf := range []string{"ECDSA-P256", "ML-DSA-65"} {
			b.Run("CA="+string(alg)+"/leaf="+leaf, func(b *testing.B) {
				req := leafRequest(b, testkeys.New(b, leaf), time.Hour)
				first, err := ca.Issue(req, Policy{}, fixedNow)
				if err != nil {
					b.Fatal(err)
				}
				msg := first.Certificate.RawTBSCertificate
				var issue, raw time.Duration
				for b.Loop() {
					t0 := time.Now()
					if _, err := ca.Issue(req, Policy{}, fixedNow); err != nil {
						b.Fatal(err)
					}
					t1 := time.Now()
					b.StopTimer()
					if _, err := alg.signHedged(ca.Key.sk, msg, nil); err != nil {
						b.Fatal(err)
					}
					raw += time.Since(t1)
					b.StartTimer()
					issue += t1.Sub(t0)
				}
				b.ReportMetric(float64(issue)/float64(raw), "issue/raw-sign")
			})
		}
	}
}

// BenchmarkRawSign is the reference: circl hedged ML-DSA over a 2 KiB message.
func BenchmarkRawSign(b *testing.B) {
	msg := make([]byte, 2048)
	for _, alg := range Algorithms() {
		key, err := GenerateKey(alg)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(string(alg), func(b *testing.B) {
			for b.Loop() {
				if _, err := alg.signHedged(key.sk, msg, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
