package localcluster_test

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
	"github.com/pq-issuer/pq-issuer/e2e/localcluster"
	"github.com/pq-issuer/pq-issuer/internal/hostile"
)

// TestHostileRequests runs the hostile-request table (internal/hostile) through the pq-issuer
// binary on the local control plane and through kubectl pq sign, all requests at once: each is
// refused with the builder's reason and words, or issued without the offending part, with one event
// each; the good requests among them are issued. Where both paths issue, OpenSSL 3.5 (and
// crypto/x509) read the same extensions in both certificates.
func TestHostileRequests(t *testing.T) {
	pc := startPQCluster(t, localcluster.Options{})
	c := pc.c
	const ns = "hostile"
	create(t, c, namespace(ns))
	p := startPQProcess(t, pc, false)

	caDir := offlineRoot(t, "ML-DSA-65", "Hostile Requests Root")
	pc.readyClusterIssuer(t, caDir, "hostile-ca")
	upnIssuer := pqClusterIssuer("hostile-upn", "hostile-ca")
	upnIssuer.Spec.Policy = &v1alpha1.IssuerPolicy{OtherNames: []string{hostile.OIDUPN.String()}}
	create(t, c, upnIssuer)
	waitIssuer(t, c, upnIssuer, metav1.ConditionTrue, v1alpha1.ReasonVerified)
	upnManifest := writeTemp(t, t.TempDir(), "upn-issuer.yaml", []byte("apiVersion: pq-issuer.dev/v1alpha1\nkind: PQClusterIssuer\nmetadata: {name: hostile-upn}\n"+
		dump(map[string]any{"spec": upnIssuer.Spec})))
	caSubject := pemCerts(t, "the root", readFile(t, filepath.Join(caDir, "tls.crt")))[0].Subject

	requests := hostile.Requests(t, ns, caSubject)
	crs := make([]*cmapi.CertificateRequest, len(requests))
	for i, req := range requests {
		issuer := "hostile-ca"
		if req.UPNPolicy {
			issuer = upnIssuer.Name
		}
		cr := request(ns, fmt.Sprintf("hostile-%02d", i), issuer, req.CSR)
		cr.Spec.Duration = &metav1.Duration{Duration: req.Duration}
		for _, u := range req.Usages {
			cr.Spec.Usages = append(cr.Spec.Usages, cmapi.KeyUsage(u))
		}
		create(t, c, cr)
		crs[i] = cr
	}

	dir := t.TempDir()
	for i, req := range requests {
		t.Run(req.Name, func(t *testing.T) {
			cr := crs[i]
			var ready *cmapi.CertificateRequestCondition
			waitFor(t, c, "CertificateRequest "+cr.Name+" finished", cr, func() bool {
				ready = apiutil.GetCertificateRequestCondition(cr, cmapi.CertificateRequestConditionReady)
				return ready != nil && (ready.Reason == cmapi.CertificateRequestReasonIssued || ready.Reason == cmapi.CertificateRequestReasonFailed)
			}, p.logs)

			// The same request, offline.
			csr := writeTemp(t, dir, cr.Name+".csr", req.CSR)
			args := []string{"sign", "--ca-dir", caDir, "--csr", csr, "--namespace", ns, "--duration", req.Duration.String(), "--usages", strings.Join(req.Usages, ",")}
			if req.UPNPolicy {
				args = append(args, "--issuer", upnManifest)
			}
			bin, err := buildKubectlPQ()
			if err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			cmd := exec.CommandContext(t.Context(), bin, args...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			cliErr := cmd.Run()
			cli := stderr.String()

			if req.Refused != "" {
				if ready.Reason != cmapi.CertificateRequestReasonFailed || !strings.Contains(ready.Message, "(PolicyViolation)") || !strings.Contains(ready.Message, req.Refused) || cr.Status.FailureTime == nil {
					t.Errorf("controller: Ready %s %q (failureTime %v); want Failed, PolicyViolation, %q", ready.Reason, ready.Message, cr.Status.FailureTime, req.Refused)
				}
				if cliErr == nil || !strings.Contains(cli, req.Refused) {
					t.Errorf("kubectl pq sign: %v, output %q; want a refusal saying %q", cliErr, cli, req.Refused)
				}
				waitEvent(t, c, cr, cmapi.CertificateRequestReasonFailed)
				return
			}
			if ready.Reason != cmapi.CertificateRequestReasonIssued || !strings.Contains(ready.Message, req.Note) {
				t.Fatalf("controller: Ready %s %q; want Issued, saying %q", ready.Reason, ready.Message, req.Note)
			}
			if cliErr != nil || !strings.Contains(cli, req.Note) {
				t.Fatalf("kubectl pq sign: %v, output %q; want the certificate, saying %q", cliErr, cli, req.Note)
			}
			waitEvent(t, c, cr, cmapi.CertificateRequestReasonIssued)
			controller := pemCerts(t, "the controller's certificate", cr.Status.Certificate)[0]
			offline := pemCerts(t, "kubectl pq sign's certificate", stdout.Bytes())[0]
			for what, cert := range map[string]*x509.Certificate{"controller": controller, "kubectl pq sign": offline} {
				if err := req.Check(cert); err != nil {
					t.Errorf("%s: %v", what, err)
				}
			}
			if !reflect.DeepEqual(controller.Extensions, offline.Extensions) || controller.NotAfter.Sub(controller.NotBefore) != offline.NotAfter.Sub(offline.NotBefore) {
				t.Errorf("the controller's and kubectl pq sign's certificates differ:\n%s\n%s", dump(controller.Extensions), dump(offline.Extensions))
			}
			described := nodeDescribe(t, map[string][]byte{"controller": cr.Status.Certificate, "kubectl pq sign": stdout.Bytes()})
			if !reflect.DeepEqual(described["controller"], described["kubectl pq sign"]) || described["controller"]["error"] != nil {
				t.Errorf("OpenSSL 3.5 reads the two certificates differently:\ncontroller: %v\nkubectl pq sign: %v", described["controller"], described["kubectl pq sign"])
			}
		})
	}
	t.Run("README's policy samples", func(t *testing.T) { policySamples(t, pc, caDir) })
	if t.Failed() {
		t.Logf("pq-issuer's log:\n%s", p.logs())
	}
}

// policySamples applies the issuer policies the README shows, as it shows them, and has the mesh
// one decide: a namespace that opted in gets its own identities, nothing else; one that did not
// gets none. The API server refuses what a PQIssuer may not set, and a range that is no CIDR.
func policySamples(t *testing.T, pc *pqCluster, caDir string) {
	c := pc.c
	readme := string(readFile(t, filepath.Join("..", "..", "README.md")))
	samples := map[string]string{}
	for _, name := range []string{"policy-mesh.yaml", "policy-gateway.yaml"} {
		path, err := filepath.Abs(filepath.Join("..", "..", "config", "samples", name))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(readme, "```yaml\n"+string(readFile(t, path))+"```") {
			t.Errorf("README.md does not show %s as it is", name)
		}
		samples[name] = path
	}
	pc.installCASecret(t, caDir, pc.ClusterResourceNamespace(), "mesh-ca")
	create(t, c, namespace("gateways"))
	pc.kubectl(t, nil, "apply", "-f", samples["policy-mesh.yaml"], "-f", samples["policy-gateway.yaml"])
	mesh := &v1alpha1.PQClusterIssuer{}
	getObj(t, c, client.ObjectKey{Name: "mesh-policy-ca"}, mesh)
	if ready := waitIssuer(t, c, mesh, metav1.ConditionTrue, v1alpha1.ReasonVerified); mesh.Status.Names != v1alpha1.NamesRestricted {
		t.Errorf("status.names %q (Ready: %s), want Restricted", mesh.Status.Names, ready.Message)
	}
	if out := pc.kubectl(t, nil, "get", "pqclusterissuer", "mesh-policy-ca", "-o", "wide"); !strings.Contains(out, "NAMES") || !strings.Contains(out, "Restricted") {
		t.Errorf("kubectl get -o wide does not show the Names column:\n%s", out)
	}

	on, off := namespace("mesh-on"), namespace("mesh-off")
	on.Labels = map[string]string{"mesh.example.com/enabled": "true"}
	create(t, c, on)
	create(t, c, off)
	key := p256(t)
	spiffe := func(ns string) []byte {
		return hostile.CSR(t, key, &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{hostile.SANExtension(t,
			hostile.GeneralName(hostile.TagURI, "spiffe://cluster.local/ns/"+ns+"/sa/api"), hostile.GeneralName(hostile.TagDNS, "api."+ns+".svc"))}})
	}
	for _, tc := range []struct{ name, namespace, reason, message string }{
		{"own identity", "mesh-on", cmapi.CertificateRequestReasonIssued, "Certificate issued by PQClusterIssuer mesh-policy-ca"},
		{"namespace not opted in", "mesh-off", cmapi.CertificateRequestReasonFailed,
			"namespace mesh-off is not selected by PQClusterIssuer mesh-policy-ca's spec.policy.namespaceSelector (mesh.example.com/enabled=true)"},
	} {
		cr := request(tc.namespace, "mesh", "mesh-policy-ca", spiffe(tc.namespace))
		cr.Spec.Usages = []cmapi.KeyUsage{cmapi.UsageDigitalSignature, cmapi.UsageServerAuth, cmapi.UsageClientAuth}
		create(t, c, cr)
		var ready *cmapi.CertificateRequestCondition
		waitFor(t, c, tc.name, cr, func() bool {
			ready = apiutil.GetCertificateRequestCondition(cr, cmapi.CertificateRequestConditionReady)
			return ready != nil && ready.Reason == tc.reason
		})
		if !strings.Contains(ready.Message, tc.message) {
			t.Errorf("%s: %q, want %q", tc.name, ready.Message, tc.message)
		}
	}

	for _, tc := range []struct{ name, manifest, refusal string }{
		{"PQIssuer with a namespaceSelector", `{"apiVersion":"pq-issuer.dev/v1alpha1","kind":"PQIssuer","metadata":{"name":"x","namespace":"gateways"},"spec":{"caSecretName":"x","policy":{"namespaceSelector":{}}}}`,
			"policy.namespaceSelector is for PQClusterIssuers"},
		{"PQIssuer letting SPIFFE IDs name any namespace", `{"apiVersion":"pq-issuer.dev/v1alpha1","kind":"PQIssuer","metadata":{"name":"x","namespace":"gateways"},"spec":{"caSecretName":"x","policy":{"spiffe":{"allowAnyNamespace":true}}}}`,
			"policy.spiffe.allowAnyNamespace is for PQClusterIssuers"},
		{"IP range that is no CIDR", `{"apiVersion":"pq-issuer.dev/v1alpha1","kind":"PQClusterIssuer","metadata":{"name":"x"},"spec":{"caSecretName":"x","policy":{"ipRanges":["10.0.0.1"]}}}`,
			"every ipRanges entry must be a CIDR range"},
	} {
		if out, err := runErr(t, []byte(tc.manifest), filepath.Join(binDir(t), "kubectl"), "--kubeconfig", pc.kubeconfig, "create", "--dry-run=server", "-f", "-"); err == nil || !strings.Contains(out, tc.refusal) {
			t.Errorf("%s: kubectl create: %v, %q; want a refusal saying %q", tc.name, err, out, tc.refusal)
		}
	}
}

// nodeDescribe has OpenSSL 3.5 read the first certificate of each PEM.
func nodeDescribe(t *testing.T, certs map[string][]byte) map[string]map[string]any {
	t.Helper()
	dir := t.TempDir()
	var cases []any
	for name, pem := range certs {
		cases = append(cases, map[string]any{"name": name, "op": "describe", "cert": writeTemp(t, dir, strings.ReplaceAll(name, " ", "-")+".pem", pem)})
	}
	var out struct {
		Results map[string]map[string]any `json:"results"`
	}
	nodeScript(t, "batch.mjs", map[string]any{"cases": cases}, &out)
	return out.Results
}
