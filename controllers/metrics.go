package controllers

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are pq-issuer's Prometheus metrics, served beside controller-runtime's.
type Metrics struct {
	signed *prometheus.CounterVec
	failed *prometheus.CounterVec
	// Pod certificates are counted apart: their volume follows pods, not Certificates.
	podSigned *prometheus.CounterVec
	podDenied *prometheus.CounterVec
	// So are Kubernetes CertificateSigningRequests, which have no Ready condition to count by.
	csrSigned *prometheus.CounterVec
	csrFailed *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	expiry    *caExpiryCollector
	ready     *prometheus.GaugeVec
}

// NewMetrics creates the metrics and registers them with reg (controller-runtime's
// metrics.Registry in the binary; a fresh registry in tests, which start controllers many times).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		signed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pq_issuer_certificaterequests_signed_total",
			Help: "CertificateRequests signed, by issuer kind and CA algorithm.",
		}, []string{"issuer_kind", "algorithm"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pq_issuer_certificaterequests_failed_total",
			Help: "CertificateRequests that failed permanently or were denied, by issuer kind, CA algorithm and reason.",
		}, []string{"issuer_kind", "algorithm", "reason"}),
		podSigned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pq_issuer_podcertificaterequests_issued_total",
			Help: "PodCertificateRequests issued, by issuer kind and CA algorithm.",
		}, []string{"issuer_kind", "algorithm"}),
		podDenied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pq_issuer_podcertificaterequests_denied_total",
			Help: "PodCertificateRequests denied, by issuer kind and reason.",
		}, []string{"issuer_kind", "reason"}),
		csrSigned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pq_issuer_certificatesigningrequests_signed_total",
			Help: "Kubernetes CertificateSigningRequests signed, by issuer kind and CA algorithm.",
		}, []string{"issuer_kind", "algorithm"}),
		csrFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pq_issuer_certificatesigningrequests_failed_total",
			Help: "Kubernetes CertificateSigningRequests failed, by issuer kind and reason.",
		}, []string{"issuer_kind", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pq_issuer_signing_duration_seconds",
			Help:    "Time to check a CSR, sign the certificate with ML-DSA and verify it, by issuer kind and CA algorithm.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16), // 100µs .. 3.3s
		}, []string{"issuer_kind", "algorithm"}),
		expiry: &caExpiryCollector{
			desc: prometheus.NewDesc("pq_issuer_ca_expiry_seconds",
				"Seconds until the issuer's CA (its earliest-expiring chain certificate) expires; negative once expired.",
				[]string{"issuer_kind", "namespace", "name", "algorithm"}, nil),
			notAfter: map[issuerID]caExpiry{},
		},
		// The expiry series exists only while an issuer is ready, so it cannot tell a broken issuer
		// from none: this one can.
		ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pq_issuer_issuer_ready",
			Help: "1 while the issuer's Ready condition is True, 0 while it is False, by issuer kind, namespace (empty for a PQClusterIssuer) and name.",
		}, []string{"issuer_kind", "namespace", "name"}),
	}
	for _, c := range []prometheus.Collector{m.signed, m.failed, m.podSigned, m.podDenied, m.csrSigned, m.csrFailed, m.duration, m.expiry, m.ready} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) observeSigned(kind, algorithm string, took time.Duration) {
	m.signed.WithLabelValues(kind, algorithm).Inc()
	m.duration.WithLabelValues(kind, algorithm).Observe(took.Seconds())
}

func (m *Metrics) observePodIssued(kind, algorithm string, took time.Duration) {
	m.podSigned.WithLabelValues(kind, algorithm).Inc()
	m.duration.WithLabelValues(kind, algorithm).Observe(took.Seconds())
}

func (m *Metrics) observePodDenied(kind, reason string) {
	m.podDenied.WithLabelValues(kind, reason).Inc()
}

func (m *Metrics) observeCSRSigned(kind, algorithm string, took time.Duration) {
	m.csrSigned.WithLabelValues(kind, algorithm).Inc()
	m.duration.WithLabelValues(kind, algorithm).Observe(took.Seconds())
}

func (m *Metrics) observeCSRFailed(kind, reason string) {
	m.csrFailed.WithLabelValues(kind, reason).Inc()
}

func (m *Metrics) observeFailed(kind, algorithm, reason string) {
	m.failed.WithLabelValues(kind, algorithm, reason).Inc()
}

func (m *Metrics) observeReady(id issuerID, ready bool) {
	v := 0.0
	if ready {
		v = 1
	}
	m.ready.WithLabelValues(id.kind, id.namespace, id.name).Set(v)
}

// forgetIssuer drops the series of a deleted issuer.
func (m *Metrics) forgetIssuer(id issuerID) {
	m.expiry.delete(id)
	m.ready.DeleteLabelValues(id.kind, id.namespace, id.name)
}

// issuerID names an issuer in metrics; namespace is empty for a PQClusterIssuer.
type issuerID struct{ kind, namespace, name string }

type caExpiry struct {
	algorithm string
	notAfter  time.Time
}

// caExpiryCollector computes the seconds left at scrape time, so the gauge is right between
// reconciles.
type caExpiryCollector struct {
	desc *prometheus.Desc

	mu       sync.Mutex
	notAfter map[issuerID]caExpiry
}

func (c *caExpiryCollector) set(id issuerID, algorithm string, notAfter time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.notAfter[id] = caExpiry{algorithm: algorithm, notAfter: notAfter}
}

func (c *caExpiryCollector) delete(id issuerID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.notAfter, id)
}

func (c *caExpiryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *caExpiryCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, e := range c.notAfter {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, time.Until(e.notAfter).Seconds(),
			id.kind, id.namespace, id.name, e.algorithm)
	}
}
