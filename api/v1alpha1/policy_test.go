package v1alpha1

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSignerPolicy(t *testing.T) {
	tests := []struct {
		name          string
		spec          IssuerSpec
		clusterScoped bool
		wantErr       string
		check         func(t *testing.T, spec IssuerSpec)
	}{
		{name: "no policy is the default", spec: IssuerSpec{}, check: func(t *testing.T, spec IssuerSpec) {
			pol, _ := spec.SignerPolicy(true)
			if pol.Restricted() || pol.MaxDuration != 0 || pol.SPIFFEAnyNamespace || NamesOf(&pol) != NamesUnrestricted {
				t.Fatalf("policy %+v", pol)
			}
		}},
		{name: "fields carried over", clusterScoped: true, spec: IssuerSpec{MaxDuration: &metav1.Duration{Duration: 24 * time.Hour}, Policy: &IssuerPolicy{
			DNSNames: []string{"*.{namespace}.svc"}, IPRanges: []string{"10.1.2.3/8"}, OtherNames: []string{"1.3.6.1.4.1.311.20.2.3"},
			KeyAlgorithms: []string{"ML-DSA"}, MinRSAKeySize: 3072, SPIFFE: &SPIFFEPolicy{TrustDomain: "prod.example", AllowAnyNamespace: true}}},
			check: func(t *testing.T, spec IssuerSpec) {
				pol, _ := spec.SignerPolicy(true)
				if pol.MaxDuration != 24*time.Hour || pol.IPRanges[0] != netip.MustParsePrefix("10.0.0.0/8") || pol.OtherNames[0].String() != "1.3.6.1.4.1.311.20.2.3" ||
					pol.KeyAlgorithms[0] != "ML-DSA" || pol.MinRSABits != 3072 || pol.TrustDomain != "prod.example" || !pol.SPIFFEAnyNamespace || NamesOf(&pol) != NamesRestricted {
					t.Fatalf("policy %+v", pol)
				}
			}},
		{name: "a PQIssuer never lets SPIFFE IDs name another namespace", spec: IssuerSpec{Policy: &IssuerPolicy{SPIFFE: &SPIFFEPolicy{AllowAnyNamespace: true}}},
			check: func(t *testing.T, spec IssuerSpec) {
				if pol, _ := spec.SignerPolicy(false); pol.SPIFFEAnyNamespace {
					t.Fatal("allowAnyNamespace reached a PQIssuer's policy")
				}
			}},
		{name: "requesterBound carried over for both kinds", spec: IssuerSpec{Policy: &IssuerPolicy{SPIFFE: &SPIFFEPolicy{RequesterBound: true}}},
			check: func(t *testing.T, spec IssuerSpec) {
				for _, clusterScoped := range []bool{false, true} {
					if pol, _ := spec.SignerPolicy(clusterScoped); !pol.SPIFFERequesterBound {
						t.Fatalf("requesterBound did not reach the policy (clusterScoped %v)", clusterScoped)
					}
				}
				if pol, _ := (&IssuerSpec{}).SignerPolicy(true); pol.SPIFFERequesterBound {
					t.Fatal("requesterBound set by default")
				}
			}},
		{name: "zero maxDuration", spec: IssuerSpec{MaxDuration: &metav1.Duration{}}, wantErr: "spec.maxDuration 0s is not positive"},
		{name: "bad CIDR", spec: IssuerSpec{Policy: &IssuerPolicy{IPRanges: []string{"10.0.0.0"}}}, wantErr: `spec.policy.ipRanges: "10.0.0.0" is not a CIDR range`},
		{name: "bad OID", spec: IssuerSpec{Policy: &IssuerPolicy{OtherNames: []string{"1.x"}}}, wantErr: `spec.policy.otherNames: "1.x" is not an OID`},
		{name: "bad selector", spec: IssuerSpec{Policy: &IssuerPolicy{NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Near"}}}}},
			wantErr: "spec.policy.namespaceSelector"},
		{name: "unknown usage", spec: IssuerSpec{Policy: &IssuerPolicy{Usages: []string{"teleportation"}}}, wantErr: `spec.policy.usages: unknown usage "teleportation"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.spec.SignerPolicy(tc.clusterScoped)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, tc.spec)
		})
	}
}
