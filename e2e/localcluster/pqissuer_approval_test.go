package localcluster_test

import (
	"strings"
	"testing"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"

	"github.com/pq-issuer/pq-issuer/e2e/localcluster"
)

// TestPQIssuerWaitsForApproval runs without cert-manager's approver, as a cluster with
// approver-policy does: pq-issuer must not touch a request until it is approved, and must mark a
// denied one Denied.
func TestPQIssuerWaitsForApproval(t *testing.T) {
	pc := startPQCluster(t, localcluster.Options{Approver: localcluster.ApproverNone, Extra: inProcessPQIssuer})
	c := pc.c
	ns := "approval"
	create(t, c, namespace(ns))
	pc.readyClusterIssuer(t, offlineRoot(t, "ML-DSA-65", "Approval Root"), "mesh-ca")

	request := func(name string) *cmapi.CertificateRequest {
		cr := request(ns, name, "mesh-ca", kubectlPQCSR(t, "--algorithm", "ECDSA-P256", "--common-name", name, "--dns", name+".approval.svc"))
		create(t, c, cr)
		return cr
	}
	// held is created first, so pq-issuer sees it before it sees approved.
	held, approved := request("held"), request("approved")
	decide(t, pc, approved, cmapi.CertificateRequestConditionApproved)
	waitRequest(t, c, approved, cmapi.CertificateRequestReasonIssued)

	if err := c.Get(t.Context(), clientKey(held), held); err != nil {
		t.Fatal(err)
	}
	if len(held.Status.Conditions) != 0 || len(held.Status.Certificate) != 0 {
		t.Fatalf("pq-issuer touched an unapproved request:\n%s", dump(held.Status))
	}
	if got := events(t, c, held, ""); len(got) != 0 {
		t.Fatalf("events about an unapproved request: %q", got)
	}

	decide(t, pc, held, cmapi.CertificateRequestConditionDenied)
	waitRequest(t, c, held, cmapi.CertificateRequestReasonDenied)
	if held.Status.FailureTime == nil || len(held.Status.Certificate) != 0 {
		t.Errorf("denied request has failureTime %v and %d certificate bytes", held.Status.FailureTime, len(held.Status.Certificate))
	}
	if msg := readyMessage(held); !strings.Contains(msg, "denied by an approval controller (e2e-approver: decided by the test)") {
		t.Errorf("Denied message %q does not pass on the approver's reason", msg)
	}
	waitEvent(t, c, held, cmapi.CertificateRequestReasonDenied)
}

// decide approves or denies a request, as an approver such as approver-policy does.
func decide(t *testing.T, pc *pqCluster, cr *cmapi.CertificateRequest, decision cmapi.CertificateRequestConditionType) {
	t.Helper()
	if err := pc.c.Get(t.Context(), clientKey(cr), cr); err != nil {
		t.Fatal(err)
	}
	apiutil.SetCertificateRequestCondition(cr, decision, cmmeta.ConditionTrue, "e2e-approver", "decided by the test")
	if err := pc.c.Status().Update(t.Context(), cr); err != nil {
		t.Fatalf("Setting %s on CertificateRequest %s: %v", decision, cr.Name, err)
	}
}
