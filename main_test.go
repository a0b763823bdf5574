package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		name         string
		args         []string
		podNamespace string
		want         options
		wantErr      string
	}{
		{
			name: "in a pod: both namespaces default to the pod's", podNamespace: "pq-issuer",
			want: options{namespace: "pq-issuer", clusterResourceNamespace: "pq-issuer", leaderElect: true, maxConcurrentReconciles: 4, maxRetryDuration: time.Hour},
		},
		{
			name: "cluster resource namespace set explicitly", podNamespace: "pq-issuer",
			args: []string{"--cluster-resource-namespace=cert-manager", "--max-concurrent-reconciles=16"},
			want: options{namespace: "pq-issuer", clusterResourceNamespace: "cert-manager", leaderElect: true, maxConcurrentReconciles: 16, maxRetryDuration: time.Hour},
		},
		{
			name: "cluster issuers only", podNamespace: "pq-issuer",
			args: []string{"--cluster-resource-namespace=cert-manager", "--cluster-issuers-only"},
			want: options{namespace: "pq-issuer", clusterResourceNamespace: "cert-manager", clusterIssuersOnly: true, leaderElect: true, maxConcurrentReconciles: 4, maxRetryDuration: time.Hour},
		},
		{
			name: "outside a pod without leader election",
			args: []string{"--cluster-resource-namespace=cert-manager", "--leader-elect=false"},
			want: options{clusterResourceNamespace: "cert-manager", maxConcurrentReconciles: 4, maxRetryDuration: time.Hour},
		},
		{
			name: "retry duration set", podNamespace: "pq-issuer",
			args: []string{"--max-retry-duration=15m"},
			want: options{namespace: "pq-issuer", clusterResourceNamespace: "pq-issuer", leaderElect: true, maxConcurrentReconciles: 4, maxRetryDuration: 15 * time.Minute},
		},
		{
			name: "no retry duration", podNamespace: "pq-issuer",
			args:    []string{"--max-retry-duration=0s"},
			wantErr: "--max-retry-duration must be positive",
		},
		{
			name:    "outside a pod, no cluster resource namespace",
			wantErr: "set --cluster-resource-namespace",
		},
		{
			name:    "outside a pod with leader election but no lease namespace",
			args:    []string{"--cluster-resource-namespace=cert-manager"},
			wantErr: "set --namespace",
		},
		{
			name: "no workers", podNamespace: "pq-issuer",
			args:    []string{"--max-concurrent-reconciles=0"},
			wantErr: "--max-concurrent-reconciles must be at least 1",
		},
		{
			name: "version outside a pod: no namespaces needed",
			args: []string{"--version"},
			want: options{showVersion: true, leaderElect: true, maxConcurrentReconciles: 4, maxRetryDuration: time.Hour},
		},
		{
			name:    "unknown flag",
			args:    []string{"--cluster-namespace=x"},
			wantErr: "flag provided but not defined",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("POD_NAMESPACE", tc.podNamespace)
			devNull, err := os.Open(os.DevNull)
			if err != nil {
				t.Fatal(err)
			}
			defer devNull.Close()
			got, err := parseFlags(tc.args, devNull)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseFlags(%q) error = %v, want one containing %q", tc.args, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.namespace != tc.want.namespace || got.clusterResourceNamespace != tc.want.clusterResourceNamespace ||
				got.clusterIssuersOnly != tc.want.clusterIssuersOnly || got.leaderElect != tc.want.leaderElect || got.maxConcurrentReconciles != tc.want.maxConcurrentReconciles ||
				got.maxRetryDuration != tc.want.maxRetryDuration || got.showVersion != tc.want.showVersion {
				t.Errorf("parseFlags(%q) = %+v, want %+v", tc.args, got, tc.want)
			}
		})
	}
}
