// Package chart holds the tests of the Helm chart in charts/pq-issuer: helm lint, helm template
// with default and other values, the values.schema.json rejecting bad values, the chart as a
// subchart of a parent with global values, and the PrometheusRule's alerts, loaded with Prometheus's
// rule loader and run on its query engine. They run the Helm CLI built from the module pinned in
// tools/go.mod (make chart-test).
package chart
