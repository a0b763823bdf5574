package chart_test

import (
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/template"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// prometheusRule is a Prometheus Operator PrometheusRule (monitoring.coreos.com/v1); its spec is a
// Prometheus rule file.
type prometheusRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              json.RawMessage `json:"spec"`
}

// ruleSpec renders the chart with v and returns the PrometheusRule and its spec.
func ruleSpec(t *testing.T, v values) (*prometheusRule, []byte) {
	t.Helper()
	objs := renderValues(t, v)
	r := decode[prometheusRule](t, objs, "PrometheusRule", "pq-issuer")
	return r, r.Spec
}

// loadRules loads a rule file as Prometheus does (rulefmt: known fields, alert and label names,
// annotation templates, and each expr through the PromQL parser).
func loadRules(spec []byte) (*rulefmt.RuleGroups, error) {
	groups, errs := rulefmt.Parse(spec, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	return groups, errors.Join(errs...)
}

// alertRule is the rule named alert with label severity.
func alertRule(t *testing.T, groups *rulefmt.RuleGroups, alert, severity string) rulefmt.Rule {
	t.Helper()
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == alert && r.Labels["severity"] == severity {
				return r
			}
		}
	}
	t.Fatalf("no alert %s with severity %s", alert, severity)
	return rulefmt.Rule{}
}

// TestPrometheusRule: the rendered PrometheusRule loads as a Prometheus rule file, with each value
// in place.
func TestPrometheusRule(t *testing.T) {
	type alert struct{ name, severity, expr, forDuration string }
	for _, tc := range []struct {
		name          string
		v             values
		wantNamespace string
		wantLabels    map[string]string // of the PrometheusRule, beside the chart's
		wantInterval  string
		wantAlerts    []alert
		// wantAlertLabels are on every alert, beside severity.
		wantAlertLabels map[string]string
	}{
		{
			name:          "defaults",
			v:             values{set: []string{"prometheusRule.enabled=true"}},
			wantNamespace: namespace,
			wantAlerts: []alert{
				{"PQIssuerCAExpiring", "warning", "pq_issuer_ca_expiry_seconds < 21 * 86400", "0s"},
				{"PQIssuerCAExpiring", "critical", "pq_issuer_ca_expiry_seconds < 7 * 86400", "0s"},
				{"PQIssuerSigningFailures", "warning", "[15m]", "0s"},
				{"PQIssuerPodCertificatesDenied", "warning", "pq_issuer_podcertificaterequests_denied_total[15m]", "0s"},
				{"PQIssuerCSRFailures", "warning", "pq_issuer_certificatesigningrequests_failed_total[15m]", "0s"},
				{"PQIssuerNotReady", "warning", "pq_issuer_issuer_ready == 0", "10m"},
			},
		},
		{
			name:            "every option",
			v:               values{file: everyOption},
			wantNamespace:   "monitoring",
			wantLabels:      map[string]string{"release": "prometheus"},
			wantInterval:    "1m",
			wantAlertLabels: map[string]string{"team": "platform"},
			wantAlerts: []alert{
				{"PQIssuerCAExpiring", "warning", "pq_issuer_ca_expiry_seconds < 21 * 86400", "0s"},
				{"PQIssuerCAExpiring", "critical", "pq_issuer_ca_expiry_seconds < 7 * 86400", "0s"},
				{"PQIssuerSigningFailures", "warning", "[15m]", "0s"},
				{"PQIssuerPodCertificatesDenied", "warning", "pq_issuer_podcertificaterequests_denied_total[15m]", "0s"},
				{"PQIssuerCSRFailures", "warning", "pq_issuer_certificatesigningrequests_failed_total[15m]", "0s"},
				{"PQIssuerNotReady", "warning", "pq_issuer_issuer_ready == 0", "10m"},
			},
		},
		{
			name: "thresholds, windows and severities",
			v: values{set: []string{"prometheusRule.enabled=true", "prometheusRule.caExpiry.warningDays=45", "prometheusRule.caExpiry.criticalDays=10",
				"prometheusRule.signingFailures.window=1h", "prometheusRule.signingFailures.severity=critical",
				"prometheusRule.issuerNotReady.for=30m", "prometheusRule.issuerNotReady.severity=critical"}},
			wantNamespace: namespace,
			wantAlerts: []alert{
				{"PQIssuerCAExpiring", "warning", "pq_issuer_ca_expiry_seconds < 45 * 86400", "0s"},
				{"PQIssuerCAExpiring", "critical", "pq_issuer_ca_expiry_seconds < 10 * 86400", "0s"},
				{"PQIssuerSigningFailures", "critical", "offset 1h", "0s"},
				{"PQIssuerPodCertificatesDenied", "critical", "pq_issuer_podcertificaterequests_denied_total offset 1h", "0s"},
				{"PQIssuerCSRFailures", "critical", "pq_issuer_certificatesigningrequests_failed_total offset 1h", "0s"},
				{"PQIssuerNotReady", "critical", "pq_issuer_issuer_ready == 0", "30m"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, spec := ruleSpec(t, tc.v)
			if r.Namespace != tc.wantNamespace {
				t.Errorf("PrometheusRule in namespace %q, want %q", r.Namespace, tc.wantNamespace)
			}
			for k, v := range tc.wantLabels {
				if r.Labels[k] != v {
					t.Errorf("PrometheusRule labels %v lack %s=%s", r.Labels, k, v)
				}
			}
			groups, err := loadRules(spec)
			if err != nil {
				t.Fatalf("Prometheus refuses the rules: %v\n%s", err, spec)
			}
			if len(groups.Groups) != 1 || groups.Groups[0].Name != "pq-issuer" || time.Duration(groups.Groups[0].Interval).String() != durationOrZero(tc.wantInterval) {
				t.Errorf("groups %+v, want one, pq-issuer, interval %q", groups.Groups, tc.wantInterval)
			}
			if n := len(groups.Groups[0].Rules); n != len(tc.wantAlerts) {
				t.Errorf("%d rules, want %d", n, len(tc.wantAlerts))
			}
			for _, want := range tc.wantAlerts {
				rule := alertRule(t, groups, want.name, want.severity)
				if !strings.Contains(rule.Expr, want.expr) {
					t.Errorf("%s (%s) expr %q lacks %q", want.name, want.severity, rule.Expr, want.expr)
				}
				if got := time.Duration(rule.For).String(); got != durationOrZero(want.forDuration) {
					t.Errorf("%s (%s) for %s, want %s", want.name, want.severity, got, want.forDuration)
				}
				wantLabels := map[string]string{"severity": want.severity}
				maps.Copy(wantLabels, tc.wantAlertLabels)
				if !maps.Equal(rule.Labels, wantLabels) {
					t.Errorf("%s (%s) labels %v, want %v", want.name, want.severity, rule.Labels, wantLabels)
				}
				for _, a := range []string{"summary", "description"} {
					if rule.Annotations[a] == "" {
						t.Errorf("%s (%s) has no %s", want.name, want.severity, a)
					}
				}
			}
		})
	}
	if find(render(t), "PrometheusRule", "pq-issuer") != nil {
		t.Error("PrometheusRule rendered by default")
	}
}

// durationOrZero is d as time.Duration prints it, "0s" for "".
func durationOrZero(d string) string {
	if d == "" {
		return "0s"
	}
	v, err := time.ParseDuration(d)
	if err != nil {
		return d
	}
	return v.String()
}

// TestRuleCheck: the check TestPrometheusRule runs refuses rules Prometheus would refuse.
func TestRuleCheck(t *testing.T) {
	_, spec := ruleSpec(t, values{set: []string{"prometheusRule.enabled=true"}})
	if _, err := loadRules(spec); err != nil {
		t.Fatalf("the chart's rules are refused: %v", err)
	}
	var rules map[string]any
	if err := json.Unmarshal(spec, &rules); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		old     string // replaced in the spec's JSON by new
		new     string
		wantErr string
	}{
		{name: "expr cut short", old: `pq_issuer_issuer_ready == 0`, new: `pq_issuer_issuer_ready ==`, wantErr: "could not parse expression"},
		{name: "unknown function", old: `increase(`, new: `increse(`, wantErr: `unknown function with name "increse"`},
		{name: "range where an instant vector belongs", old: `pq_issuer_issuer_ready == 0`, new: `pq_issuer_issuer_ready[5m] == 0`, wantErr: "could not parse expression"},
		{name: "annotation template broken", old: `{{ $labels.name }}`, new: `{{ $labels.name }`, wantErr: `unexpected "}" in operand`},
		{name: "misspelled field", old: `"for":`, new: `"fore":`, wantErr: "field fore not found"},
		{name: "duration without a unit", old: `"for":"10m"`, new: `"for":"10"`, wantErr: "not a valid duration string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			broken := strings.Replace(string(spec), tc.old, tc.new, 1)
			if broken == string(spec) {
				t.Fatalf("the spec has no %s:\n%s", tc.old, spec)
			}
			_, err := loadRules([]byte(broken))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("rules with %s: error %v, want one containing %q", tc.new, err, tc.wantErr)
			}
		})
	}
}

// TestAlerts evaluates each alert's expr with Prometheus's query engine over series as Prometheus
// would scrape them (through the chart's ServiceMonitor, honorLabels: a PQIssuer's namespace is its
// own, a PQClusterIssuer's the release namespace), and expands the annotations of each alert that
// fires.
func TestAlerts(t *testing.T) {
	_, spec := ruleSpec(t, values{set: []string{"prometheusRule.enabled=true"}})
	groups, err := loadRules(spec)
	if err != nil {
		t.Fatal(err)
	}
	type firing struct {
		labels string   // the alert's labels from the series, without the rule's
		text   []string // in the expanded summary or description
	}
	type eval struct {
		at   time.Duration
		want []firing
	}
	const (
		expiry      = `pq_issuer_ca_expiry_seconds`
		failed      = `pq_issuer_certificaterequests_failed_total`
		podDenied   = `pq_issuer_podcertificaterequests_denied_total`
		csrFailed   = `pq_issuer_certificatesigningrequests_failed_total`
		ready       = `pq_issuer_issuer_ready`
		clusterCA   = `{issuer_kind="PQClusterIssuer", namespace="pq-issuer", name="mesh-ca", algorithm="ML-DSA-87"}`
		namespaceCA = `{issuer_kind="PQIssuer", namespace="apps", name="mesh", algorithm="ML-DSA-65"}`
	)
	for _, tc := range []struct {
		name            string
		alert, severity string
		// load is a promqltest load command's body, and step its interval.
		step  string
		load  string
		evals []eval
	}{
		{
			name: "CA expiring, warning under 21 days", alert: "PQIssuerCAExpiring", severity: "warning",
			step: "1h",
			load: expiry + namespaceCA + ` 1900800-3600x100
				` + expiry + clusterCA + ` 864000-3600x100
				` + expiry + `{issuer_kind="PQClusterIssuer", namespace="pq-issuer", name="long-lived", algorithm="ML-DSA-87"} 31536000-3600x100`,
			evals: []eval{
				{at: 0, want: []firing{{clusterCA, []string{"The CA of PQClusterIssuer mesh-ca expires in 10d 0h 0m 0s", "under 21 days", "kubectl get pqclusterissuers mesh-ca"}}}},
				{at: 25 * time.Hour, want: []firing{
					{namespaceCA, []string{"The CA of PQIssuer apps/mesh expires in 20d 23h 0m 0s", "kubectl get pqissuers -n apps mesh", "kubectl pq ca create"}},
					{clusterCA, []string{"The CA of PQClusterIssuer mesh-ca expires in 8d 23h 0m 0s"}},
				}},
			},
		},
		{
			name: "CA expiring, critical under 7 days", alert: "PQIssuerCAExpiring", severity: "critical",
			step: "1h",
			load: expiry + namespaceCA + ` 1900800-3600x100
				` + expiry + clusterCA + ` 864000-3600x100`,
			evals: []eval{
				{at: 0},
				{at: 73 * time.Hour, want: []firing{{clusterCA, []string{"The CA of PQClusterIssuer mesh-ca expires in 6d 23h 0m 0s", "under 7 days"}}}},
			},
		},
		{
			// A failure counter series is born at the first failure, at 1: no increase() sees it.
			name: "signing failures, new and growing counters, by kind and reason", alert: "PQIssuerSigningFailures", severity: "warning",
			step: "1m",
			load: `up{job="pq-issuer-metrics", pod="pq-issuer-a"} 1x60
				` + failed + `{job="pq-issuer-metrics", pod="pq-issuer-a", issuer_kind="PQClusterIssuer", algorithm="ML-DSA-65", reason="Failed"} _x20 1x40
				` + failed + `{job="pq-issuer-metrics", pod="pq-issuer-a", issuer_kind="PQClusterIssuer", algorithm="ML-DSA-87", reason="Failed"} _x20 1x40
				` + failed + `{job="pq-issuer-metrics", pod="pq-issuer-a", issuer_kind="PQIssuer", algorithm="ML-DSA-44", reason="Denied"} _x5 3x25 4x30
				` + failed + `{job="pq-issuer-metrics", pod="pq-issuer-a", issuer_kind="PQIssuer", algorithm="ML-DSA-65", reason="Failed"} 5x60`,
			evals: []eval{
				// Failures from before Prometheus's first scrape do not count.
				{at: 10 * time.Minute},
				{at: 21 * time.Minute, want: []firing{
					{`{issuer_kind="PQClusterIssuer", reason="Failed"}`, []string{"2 CertificateRequests for PQClusterIssuers ended with reason Failed in the last 15m", "kubectl get certificaterequests -A"}},
				}},
				{at: 32 * time.Minute, want: []firing{
					{`{issuer_kind="PQClusterIssuer", reason="Failed"}`, nil},
					{`{issuer_kind="PQIssuer", reason="Denied"}`, []string{"CertificateRequests for PQIssuers ended Denied in the last 15m"}},
				}},
				{at: 50 * time.Minute},
			},
		},
		{
			// The pod restarted: its counters start again, each at its first failure.
			name: "signing failures after a restart", alert: "PQIssuerSigningFailures", severity: "warning",
			step: "1m",
			load: `up{job="pq-issuer-metrics", pod="pq-issuer-a"} 1x30
				up{job="pq-issuer-metrics", pod="pq-issuer-b"} _x30 1x30
				` + failed + `{job="pq-issuer-metrics", pod="pq-issuer-a", issuer_kind="PQIssuer", algorithm="ML-DSA-65", reason="Failed"} 7x30
				` + failed + `{job="pq-issuer-metrics", pod="pq-issuer-b", issuer_kind="PQIssuer", algorithm="ML-DSA-65", reason="Failed"} _x35 1x25`,
			evals: []eval{
				{at: 25 * time.Minute},
				{at: 36 * time.Minute, want: []firing{
					{`{issuer_kind="PQIssuer", reason="Failed"}`, []string{"1 CertificateRequests for PQIssuers ended with reason Failed"}},
				}},
			},
		},
		{
			// Like the CertificateRequests' counters: born at the first denial, at 1; two replicas'
			// series add up.
			name: "pod certificates denied, new and growing counters, by kind and reason", alert: "PQIssuerPodCertificatesDenied", severity: "warning",
			step: "1m",
			load: `up{job="pq-issuer-metrics", pod="pq-issuer-a"} 1x60
				up{job="pq-issuer-metrics", pod="pq-issuer-b"} 1x60
				` + podDenied + `{job="pq-issuer-metrics", pod="pq-issuer-a", issuer_kind="PQClusterIssuer", reason="UnsupportedKeyType"} _x20 1x40
				` + podDenied + `{job="pq-issuer-metrics", pod="pq-issuer-b", issuer_kind="PQClusterIssuer", reason="UnsupportedKeyType"} _x20 1x40
				` + podDenied + `{job="pq-issuer-metrics", pod="pq-issuer-a", issuer_kind="PQIssuer", reason="InvalidUnverifiedUserAnnotations"} _x5 2x25 3x30
				` + podDenied + `{job="pq-issuer-metrics", pod="pq-issuer-a", issuer_kind="PQIssuer", reason="PolicyViolation"} 4x60`,
			evals: []eval{
				// Denials from before Prometheus's first scrape do not count.
				{at: 10 * time.Minute},
				{at: 21 * time.Minute, want: []firing{
					{`{issuer_kind="PQClusterIssuer", reason="UnsupportedKeyType"}`, []string{
						"PodCertificateRequests for PQClusterIssuers were denied (UnsupportedKeyType) in the last 15m",
						"2 PodCertificateRequests for PQClusterIssuers were denied with reason UnsupportedKeyType in the last 15m",
						"kubectl get podcertificaterequests -A", "kubectl get events -A --field-selector involvedObject.kind=PodCertificateRequest",
						"UnsupportedKeyType: the keyType", "InvalidUnverifiedUserAnnotations: ", "PolicyViolation: ",
						"A denial is final for the pod", "recreate the pod"}},
				}},
				{at: 32 * time.Minute, want: []firing{
					{`{issuer_kind="PQClusterIssuer", reason="UnsupportedKeyType"}`, nil},
					{`{issuer_kind="PQIssuer", reason="InvalidUnverifiedUserAnnotations"}`, []string{"PodCertificateRequests for PQIssuers were denied (InvalidUnverifiedUserAnnotations) in the last 15m"}},
				}},
				{at: 50 * time.Minute},
			},
		},
		{
			name: "pod certificates denied after a restart", alert: "PQIssuerPodCertificatesDenied", severity: "warning",
			step: "1m",
			load: `up{job="pq-issuer-metrics", pod="pq-issuer-a"} 1x30
				up{job="pq-issuer-metrics", pod="pq-issuer-b"} _x30 1x30
				` + podDenied + `{job="pq-issuer-metrics", pod="pq-issuer-a", issuer_kind="PQIssuer", reason="PolicyViolation"} 3x30
				` + podDenied + `{job="pq-issuer-metrics", pod="pq-issuer-b", issuer_kind="PQIssuer", reason="PolicyViolation"} _x35 1x25`,
			evals: []eval{
				{at: 25 * time.Minute},
				{at: 36 * time.Minute, want: []firing{
					{`{issuer_kind="PQIssuer", reason="PolicyViolation"}`, []string{"1 PodCertificateRequests for PQIssuers were denied with reason PolicyViolation"}},
				}},
			},
		},
		{
			name: "CSR failures, new and growing counters, by kind and reason", alert: "PQIssuerCSRFailures", severity: "warning",
			step: "1m",
			load: `up{job="pq-issuer-metrics", pod="pq-issuer-a"} 1x60
				` + csrFailed + `{job="pq-issuer-metrics", pod="pq-issuer-a", issuer_kind="PQIssuer", reason="DeniedReference"} _x20 1x40
				` + csrFailed + `{job="pq-issuer-metrics", pod="pq-issuer-a", issuer_kind="PQClusterIssuer", reason="PolicyViolation"} _x5 1x25 2x30
				` + csrFailed + `{job="pq-issuer-metrics", pod="pq-issuer-a", issuer_kind="PQClusterIssuer", reason="SigningFailed"} 2x60`,
			evals: []eval{
				// Failures from before Prometheus's first scrape do not count.
				{at: 10 * time.Minute},
				{at: 21 * time.Minute, want: []firing{
					{`{issuer_kind="PQIssuer", reason="DeniedReference"}`, []string{
						"Kubernetes CertificateSigningRequests for PQIssuers ended Failed (DeniedReference) in the last 15m",
						"1 Kubernetes CertificateSigningRequests for PQIssuers ended Failed with reason DeniedReference in the last 15m",
						"kubectl get csr", "kubectl describe csr NAME", "grant the Role the message quotes",
						"PolicyViolation: ", "SigningFailed: ", "create a new CertificateSigningRequest"}},
				}},
				{at: 32 * time.Minute, want: []firing{
					{`{issuer_kind="PQIssuer", reason="DeniedReference"}`, nil},
					{`{issuer_kind="PQClusterIssuer", reason="PolicyViolation"}`, []string{"CertificateSigningRequests for PQClusterIssuers ended Failed (PolicyViolation) in the last 15m"}},
				}},
				{at: 50 * time.Minute},
			},
		},
		{
			name: "CSR failures after a restart", alert: "PQIssuerCSRFailures", severity: "warning",
			step: "1m",
			load: `up{job="pq-issuer-metrics", pod="pq-issuer-a"} 1x30
				up{job="pq-issuer-metrics", pod="pq-issuer-b"} _x30 1x30
				` + csrFailed + `{job="pq-issuer-metrics", pod="pq-issuer-a", issuer_kind="PQClusterIssuer", reason="SigningFailed"} 2x30
				` + csrFailed + `{job="pq-issuer-metrics", pod="pq-issuer-b", issuer_kind="PQClusterIssuer", reason="SigningFailed"} _x35 1x25`,
			evals: []eval{
				{at: 25 * time.Minute},
				{at: 36 * time.Minute, want: []firing{
					{`{issuer_kind="PQClusterIssuer", reason="SigningFailed"}`, []string{"1 Kubernetes CertificateSigningRequests for PQClusterIssuers ended Failed with reason SigningFailed"}},
				}},
			},
		},
		{
			name: "issuer not ready", alert: "PQIssuerNotReady", severity: "warning",
			step: "1m",
			load: ready + `{issuer_kind="PQIssuer", namespace="apps", name="mesh"} 1x30
				` + ready + `{issuer_kind="PQIssuer", namespace="apps", name="broken"} 1x10 0x20
				` + ready + `{issuer_kind="PQClusterIssuer", namespace="pq-issuer", name="mesh-ca"} 0x30`,
			evals: []eval{
				{at: 5 * time.Minute, want: []firing{
					{`{issuer_kind="PQClusterIssuer", namespace="pq-issuer", name="mesh-ca"}`, []string{"PQClusterIssuer mesh-ca is not Ready", "kubectl get pqclusterissuers mesh-ca"}},
				}},
				{at: 20 * time.Minute, want: []firing{
					{`{issuer_kind="PQIssuer", namespace="apps", name="broken"}`, []string{"PQIssuer apps/broken is not Ready", "kubectl get pqissuers -n apps broken", "SecretNotFound"}},
					{`{issuer_kind="PQClusterIssuer", namespace="pq-issuer", name="mesh-ca"}`, nil},
				}},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rule := alertRule(t, groups, tc.alert, tc.severity)
			storage := promqltest.LoadedStorage(t, "load "+tc.step+"\n"+indent(tc.load))
			engine := promqltest.NewTestEngineWithOpts(t, promql.EngineOpts{MaxSamples: promqltest.DefaultMaxSamplesPerQuery, Timeout: time.Minute})
			for _, e := range tc.evals {
				ts := time.Unix(0, 0).Add(e.at)
				q, err := engine.NewInstantQuery(t.Context(), storage, nil, rule.Expr, ts)
				if err != nil {
					t.Fatal(err)
				}
				res := q.Exec(t.Context())
				if res.Err != nil {
					t.Fatalf("at %s: %v", e.at, res.Err)
				}
				vec, err := res.Vector()
				if err != nil {
					t.Fatalf("at %s: %v", e.at, err)
				}
				got := map[string]promql.Sample{}
				for _, s := range vec {
					got[labels.NewBuilder(s.Metric).Del(model.MetricNameLabel).Labels().String()] = s
				}
				var wantLabels []string
				for _, f := range e.want {
					wantLabels = append(wantLabels, normalize(t, f.labels))
				}
				gotLabels := slices.Sorted(maps.Keys(got))
				slices.Sort(wantLabels)
				if !slices.Equal(gotLabels, wantLabels) {
					t.Errorf("at %s: %s fires for %q, want %q", e.at, tc.alert, gotLabels, wantLabels)
					continue
				}
				for _, f := range e.want {
					s := got[normalize(t, f.labels)]
					text := expand(t, rule, s, ts)
					for _, want := range f.text {
						if !strings.Contains(text, want) {
							t.Errorf("at %s, %s's annotations lack %q:\n%s", e.at, f.labels, want, text)
						}
					}
				}
			}
		})
	}
}

// normalize is a label set as labels.Labels prints it.
func normalize(t *testing.T, set string) string {
	t.Helper()
	m, err := parser.NewParser(parser.Options{}).ParseMetric(set)
	if err != nil {
		t.Fatalf("%s: %v", set, err)
	}
	return m.String()
}

func indent(load string) string {
	var lines []string
	for l := range strings.Lines(load) {
		lines = append(lines, "  "+strings.TrimSpace(l))
	}
	return strings.Join(lines, "\n") + "\n"
}

// expand expands the rule's summary and description for the alert from sample s at ts, as
// Prometheus's alerting rule does, and returns them.
func expand(t *testing.T, rule rulefmt.Rule, s promql.Sample, ts time.Time) string {
	t.Helper()
	defs := "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"
	data := template.AlertTemplateData(s.Metric.Map(), nil, "", s)
	var out []string
	for _, a := range []string{"summary", "description"} {
		text, err := template.NewTemplateExpander(t.Context(), defs+rule.Annotations[a], "__alert_"+rule.Alert, data,
			model.TimeFromUnixNano(ts.UnixNano()), nil, nil, nil).Expand()
		if err != nil {
			t.Fatalf("expanding %s's %s: %v", rule.Alert, a, err)
		}
		out = append(out, a+": "+text)
	}
	return strings.Join(out, "\n")
}
