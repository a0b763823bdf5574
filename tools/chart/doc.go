// Package chart holds the tests of the Helm chart in charts/pq-issuer: helm lint, helm template
// with default and other values, and the values.schema.json rejecting bad values. They run the
// Helm CLI built from the module pinned in tools/go.mod (make chart-test).
package chart
