package chart_test

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// serviceMonitor holds the fields of a Prometheus Operator ServiceMonitor (monitoring.coreos.com/v1)
// that the chart renders, named as in the operator's API: decoded strictly, a rendered field the
// type lacks fails the test.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              serviceMonitorSpec `json:"spec"`
}

type serviceMonitorSpec struct {
	NamespaceSelector namespaceSelector    `json:"namespaceSelector"`
	Selector          metav1.LabelSelector `json:"selector"`
	Endpoints         []endpoint           `json:"endpoints"`
}

type namespaceSelector struct {
	MatchNames []string `json:"matchNames"`
}

type endpoint struct {
	Port              string          `json:"port"`
	Path              string          `json:"path"`
	Scheme            string          `json:"scheme"`
	BearerTokenFile   string          `json:"bearerTokenFile"`
	TLSConfig         *tlsConfig      `json:"tlsConfig"`
	Interval          string          `json:"interval"`
	ScrapeTimeout     string          `json:"scrapeTimeout,omitempty"`
	HonorLabels       bool            `json:"honorLabels"`
	Relabelings       []relabelConfig `json:"relabelings,omitempty"`
	MetricRelabelings []relabelConfig `json:"metricRelabelings,omitempty"`
}

type tlsConfig struct {
	InsecureSkipVerify bool `json:"insecureSkipVerify"`
}

type relabelConfig struct {
	SourceLabels []string `json:"sourceLabels,omitempty"`
	Separator    string   `json:"separator,omitempty"`
	TargetLabel  string   `json:"targetLabel,omitempty"`
	Regex        string   `json:"regex,omitempty"`
	Modulus      uint64   `json:"modulus,omitempty"`
	Replacement  string   `json:"replacement,omitempty"`
	Action       string   `json:"action,omitempty"`
}
