package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
)

// Kubernetes object name rules (DNS-1123 subdomain for a Secret name, label
// for a namespace), checked here so a typo fails now and not at apply time.
var (
	dns1123Subdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	dns1123Label     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
)

// secretManifest is a v1 Secret with only the fields we write; the field
// order is the order kubectl prints.
type secretManifest struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   secretMetadata    `json:"metadata"`
	Type       string            `json:"type"`
	Data       map[string]string `json:"data"`
}

type secretMetadata struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace,omitempty"`
	Labels    map[string]string `json:"labels"`
}

func (c *cli) caSecret(args []string) error {
	fs := newFlagSet("ca secret", fmt.Sprintf(`Usage: kubectl pq ca secret --ca-dir DIR --name NAME [--namespace NS] [-o yaml|json]

Prints a kubernetes.io/tls Secret holding the CA in DIR, for a PQIssuer
(its namespace) or a PQClusterIssuer (cert-manager's cluster resource
namespace, usually cert-manager):
  tls.crt  the CA certificate and its chain
  tls.key  the CA private key
  ca.crt   the trust anchor (the root)
It carries the label %s=%s, which marks it as a CA Secret:
pq-issuer uses no Secret without it.
The CA is checked first, as the controller will check it. The output
contains the private key: pipe it to 'kubectl apply -f -' rather than
saving it. Put an intermediate here and keep the root offline.
`, v1alpha1.CASecretLabel, v1alpha1.CASecretLabelValue))
	caDir := fs.String("ca-dir", "", "directory of the CA (tls.crt and tls.key)")
	name := fs.String("name", "", "name of the Secret (the issuer's spec.caSecretName)")
	namespace := fs.String("namespace", "", "namespace of the Secret (omitted: kubectl's current namespace)")
	output := fs.String("o", "yaml", "output format: yaml or json")
	if err := c.parse(fs, args, false); err != nil {
		return err
	}
	if err := required(fs, "ca-dir", "name"); err != nil {
		return err
	}
	if len(*name) > 253 || !dns1123Subdomain.MatchString(*name) {
		return usagef("--name %q is not a valid Secret name: use lower case letters, digits, '-' and '.'", *name)
	}
	if *namespace != "" && (len(*namespace) > 63 || !dns1123Label.MatchString(*namespace)) {
		return usagef("--namespace %q is not a valid namespace name: use lower case letters, digits and '-'", *namespace)
	}
	if *output != "yaml" && *output != "json" {
		return usagef("-o %q: use yaml or json", *output)
	}
	// The files go into the Secret as they are, once the signer accepts them.
	ca, certPEM, keyPEM, err := c.loadCADir(*caDir)
	if err != nil {
		return err
	}
	// The label marks the Secret as a CA Secret, without which pq-issuer does not use it.
	marked := map[string]string{v1alpha1.CASecretLabel: v1alpha1.CASecretLabelValue}
	s := secretManifest{
		APIVersion: "v1",
		Kind:       "Secret",
		Metadata:   secretMetadata{Name: *name, Namespace: *namespace, Labels: marked},
		Type:       "kubernetes.io/tls",
		Data: map[string]string{
			"ca.crt":  base64.StdEncoding.EncodeToString(ca.TrustAnchorPEM()),
			"tls.crt": base64.StdEncoding.EncodeToString(certPEM),
			"tls.key": base64.StdEncoding.EncodeToString(keyPEM),
		},
	}
	if *output == "json" {
		out, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "%s\n", out)
		return nil
	}
	fmt.Fprint(c.stdout, s.yaml())
	return nil
}

// yaml renders s by hand: names are DNS-1123 and data values are base64,
// so no value needs escaping; label values are quoted, as "true" would
// otherwise be a boolean.
func (s secretManifest) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: %s\nkind: %s\nmetadata:\n  name: %s\n", s.APIVersion, s.Kind, s.Metadata.Name)
	if s.Metadata.Namespace != "" {
		fmt.Fprintf(&b, "  namespace: %s\n", s.Metadata.Namespace)
	}
	b.WriteString("  labels:\n")
	for _, k := range slices.Sorted(maps.Keys(s.Metadata.Labels)) {
		fmt.Fprintf(&b, "    %s: %q\n", k, s.Metadata.Labels[k])
	}
	fmt.Fprintf(&b, "type: %s\ndata:\n", s.Type)
	for _, k := range []string{"ca.crt", "tls.crt", "tls.key"} {
		fmt.Fprintf(&b, "  %s: %s\n", k, s.Data[k])
	}
	return b.String()
}
