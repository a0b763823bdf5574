package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
)

// caKey is the data key of the trust anchor in a CA Secret, as cert-manager names it.
const caKey = "ca.crt"

func (c *cli) caSecretCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret --ca-dir DIR --name NAME [--namespace NS] [-o yaml|json]",
		Short: "Print a kubernetes.io/tls Secret manifest for a CA directory",
		Long: fmt.Sprintf(`Prints a kubernetes.io/tls Secret holding the CA in DIR, for a PQIssuer
(its namespace) or a PQClusterIssuer (cert-manager's cluster resource
namespace, usually cert-manager):
  tls.crt  the CA certificate and its chain
  tls.key  the CA private key
  ca.crt   the trust anchor (the root)
It carries the label %s=%s, which marks it as a CA Secret:
pq-issuer uses no Secret without it.
The CA is checked first, as the controller will check it. The output
contains the private key: pipe it to 'kubectl apply -f -' rather than
saving it. Put an intermediate here and keep the root offline.`, v1alpha1.CASecretLabel, v1alpha1.CASecretLabelValue),
		Args: noArgs,
	}
	fs := cmd.Flags()
	caDir := fs.String("ca-dir", "", "directory of the CA (tls.crt and tls.key)")
	name := fs.String("name", "", "name of the Secret (the issuer's spec.caSecretName)")
	namespace := fs.String("namespace", "", "namespace of the Secret (omitted: kubectl's current namespace)")
	output := fs.StringP("output", "o", "yaml", "output format: yaml or json")
	completeValues(cmd, "output", "yaml", "json")
	cmd.RunE = func(*cobra.Command, []string) error {
		if err := required(fs, "ca-dir", "name"); err != nil {
			return err
		}
		// Checked here so that a typo fails now and not at apply time.
		if len(validation.IsDNS1123Subdomain(*name)) > 0 {
			return usagef("--name %q is not a valid Secret name: use lower case letters, digits, '-' and '.'", *name)
		}
		if *namespace != "" && len(validation.IsDNS1123Label(*namespace)) > 0 {
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
		secret := &corev1.Secret{
			TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{
				Name:      *name,
				Namespace: *namespace,
				// The label marks the Secret as a CA Secret, without which pq-issuer does not use it.
				Labels: map[string]string{v1alpha1.CASecretLabel: v1alpha1.CASecretLabelValue},
			},
			Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM, caKey: ca.TrustAnchorPEM()},
		}
		var out []byte
		if *output == "json" {
			out, err = json.MarshalIndent(secret, "", "  ")
			out = append(out, '\n')
		} else {
			out, err = yaml.Marshal(secret)
		}
		if err != nil {
			return err
		}
		_, err = c.stdout.Write(out)
		return err
	}
	return cmd
}

// manifest is an object of inspect's input: a Secret, or a List of objects
// (kubectl get secrets -o yaml|json).
type manifest struct {
	corev1.Secret
	// Data shadows the Secret's, whose []byte would refuse a value folded
	// over lines and not name the field that is not base64.
	Data  map[string]string `json:"data,omitempty"`
	Items []manifest        `json:"items,omitempty"`
}

// yamlManifest recognises a YAML object by a top-level apiVersion or kind.
var yamlManifest = regexp.MustCompile(`(?m)^(apiVersion|kind):`)

// parseManifest reads the Secrets of a Kubernetes manifest: a JSON object,
// such as a List (kubectl get secrets -o json), or YAML documents (kubectl
// get secret -o yaml). ok is false when data is not a manifest at all.
func parseManifest(data []byte) (secrets []*corev1.Secret, ok bool, err error) {
	switch trimmed := bytes.TrimSpace(data); {
	case bytes.HasPrefix(trimmed, []byte("{")):
		var m manifest
		if err := json.Unmarshal(trimmed, &m); err != nil {
			return nil, true, fmt.Errorf("the input looks like JSON but does not parse: %w", err)
		}
		secrets, err = m.secrets()
	case yamlManifest.Match(data):
		secrets, err = yamlSecrets(data)
	default:
		return nil, false, nil
	}
	return secrets, true, err
}

// yamlSecrets reads the Secrets of a YAML stream, skipping empty documents.
func yamlSecrets(data []byte) ([]*corev1.Secret, error) {
	var secrets []*corev1.Secret
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for n := 1; ; n++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("YAML document %d: %w", n, err)
		}
		var m *manifest // stays nil for a document of comments only
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return nil, fmt.Errorf("YAML document %d: %w%s", n, err, tabHint(doc))
		}
		if m == nil {
			continue
		}
		s, err := m.secrets()
		if err != nil {
			return nil, fmt.Errorf("YAML document %d: %w", n, err)
		}
		secrets = append(secrets, s...)
	}
	if len(secrets) == 0 {
		return nil, errors.New("the YAML input has no Secrets")
	}
	return secrets, nil
}

// tabHint names the commonest cause of a YAML syntax error, a tab in the
// indentation, which the parser's message does not.
func tabHint(doc []byte) string {
	for i, line := range strings.Split(string(doc), "\n") {
		indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
		if strings.Contains(indent, "\t") {
			return fmt.Sprintf(" (line %d is indented with a tab, which YAML does not allow)", i+1)
		}
	}
	return ""
}

// secrets returns the Secret m is, or those of the List it is, with data
// (base64) and stringData (text, which wins, as in the API server) decoded
// into Data.
func (m *manifest) secrets() ([]*corev1.Secret, error) {
	switch m.Kind {
	case "Secret":
		s := m.Secret
		s.Data = make(map[string][]byte, len(m.Data)+len(s.StringData))
		for k, v := range m.Data {
			// YAML may fold a long value over lines; base64 ignores the breaks.
			b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(v), ""))
			if err != nil {
				return nil, fmt.Errorf("secret %s: data field %q is not base64: %w", s.Name, k, err)
			}
			s.Data[k] = b
		}
		for k, v := range s.StringData {
			s.Data[k] = []byte(v)
		}
		return []*corev1.Secret{&s}, nil
	case "List", "SecretList":
		var all []*corev1.Secret
		for i := range m.Items {
			s, err := m.Items[i].secrets()
			if err != nil {
				return nil, fmt.Errorf("item %d: %w", i+1, err)
			}
			all = append(all, s...)
		}
		return all, nil
	case "":
		return nil, errors.New("the input is a kind-less manifest, not a Secret")
	}
	return nil, fmt.Errorf("the input is a %s manifest, not a Secret", m.Kind)
}

// secretFields lists the data keys of s in reading order: the chain first,
// then the trust anchor, then the key, so "signed by next" follows the chain.
func secretFields(s *corev1.Secret) []string {
	order := []string{corev1.TLSCertKey, caKey, corev1.TLSPrivateKeyKey}
	rank := func(k string) int {
		if i := slices.Index(order, k); i >= 0 {
			return i
		}
		return len(order)
	}
	keys := make([]string, 0, len(s.Data))
	for k := range s.Data {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if d := rank(a) - rank(b); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	return keys
}
