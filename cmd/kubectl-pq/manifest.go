package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// secretInput is a Secret read from a manifest, with its data decoded.
type secretInput struct {
	name, namespace, typ string
	data                 map[string][]byte
}

// fields lists the data keys in reading order: the chain first, then the
// trust anchor, then the key, so "signed by next" follows the chain.
func (s secretInput) fields() []string {
	keys := make([]string, 0, len(s.data))
	for k := range s.data {
		keys = append(keys, k)
	}
	rank := func(k string) int {
		if i := slices.Index([]string{"tls.crt", "ca.crt", "tls.key"}, k); i >= 0 {
			return i
		}
		return 3
	}
	sort.Slice(keys, func(i, j int) bool {
		if ri, rj := rank(keys[i]), rank(keys[j]); ri != rj {
			return ri < rj
		}
		return keys[i] < keys[j]
	})
	return keys
}

// yamlManifest recognises a YAML object by a top-level apiVersion or kind.
var yamlManifest = regexp.MustCompile(`(?m)^(apiVersion|kind):`)

// parseManifest reads the Secrets of a Kubernetes manifest: a JSON object,
// a JSON List (kubectl get secrets -o json) or YAML documents (kubectl get
// secret -o yaml). ok is false when data is not a manifest at all.
func parseManifest(data []byte) (secrets []secretInput, ok bool, err error) {
	trimmed := bytes.TrimSpace(data)
	switch {
	case bytes.HasPrefix(trimmed, []byte("{")):
		secrets, err = parseJSONManifest(trimmed)
	case yamlManifest.Match(data):
		secrets, err = parseYAMLManifest(string(data))
	default:
		return nil, false, nil
	}
	return secrets, true, err
}

type jsonObject struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Type       string            `json:"type"`
	Data       map[string]string `json:"data"`
	StringData map[string]string `json:"stringData"`
	Items      []json.RawMessage `json:"items"`
}

func parseJSONManifest(data []byte) ([]secretInput, error) {
	var o jsonObject
	if err := json.Unmarshal(data, &o); err != nil {
		return nil, fmt.Errorf("the input looks like JSON but does not parse: %w", err)
	}
	switch o.Kind {
	case "Secret":
		s := secretInput{name: o.Metadata.Name, namespace: o.Metadata.Namespace, typ: o.Type}
		err := s.set(o.Data, o.StringData)
		return []secretInput{s}, err
	case "List", "SecretList":
		var all []secretInput
		for i, item := range o.Items {
			ss, err := parseJSONManifest(item)
			if err != nil {
				return nil, fmt.Errorf("item %d: %w", i+1, err)
			}
			all = append(all, ss...)
		}
		return all, nil
	}
	return nil, fmt.Errorf("the input is a %s manifest, not a Secret", kindName(o.Kind))
}

func kindName(kind string) string {
	if kind == "" {
		return "kind-less"
	}
	return kind
}

// set decodes data (base64) and stringData (text, which wins, as in the
// API server) into s.data.
func (s *secretInput) set(data, stringData map[string]string) error {
	s.data = map[string][]byte{}
	for k, v := range data {
		// YAML may fold a long value over lines; base64 ignores the breaks.
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(v), ""))
		if err != nil {
			return fmt.Errorf("secret %s: data field %q is not base64: %w", s.name, k, err)
		}
		s.data[k] = b
	}
	for k, v := range stringData {
		s.data[k] = []byte(v)
	}
	return nil
}

// parseYAMLManifest reads the subset of YAML that Secret manifests use:
// top-level scalars, the metadata name and namespace, and the data and
// stringData maps with plain, quoted, folded-over-lines or block (|) values.
// Documents are separated by "---"; those that are not Secrets are refused.
func parseYAMLManifest(text string) ([]secretInput, error) {
	var secrets []secretInput
	for i, doc := range regexp.MustCompile(`(?m)^---.*$`).Split(text, -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		s, err := parseYAMLSecret(doc)
		if err != nil {
			return nil, fmt.Errorf("YAML document %d: %w", i+1, err)
		}
		secrets = append(secrets, s)
	}
	if len(secrets) == 0 {
		return nil, fmt.Errorf("the YAML input has no documents")
	}
	return secrets, nil
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// yamlEntry is a key of a second-level map with its value lines.
type yamlEntry struct {
	key   string
	lines []string // first the text after "key:", then continuation lines
}

func parseYAMLSecret(doc string) (secretInput, error) {
	top := map[string]string{}
	nested := map[string][]*yamlEntry{} // section -> entries
	section, childIndent := "", 0
	var cur *yamlEntry
	for n, line := range strings.Split(doc, "\n") {
		line = strings.TrimRight(line, " \r")
		body := strings.TrimLeft(line, " ")
		if body == "" || strings.HasPrefix(body, "#") {
			if cur != nil {
				cur.lines = append(cur.lines, "") // a blank line inside a block value
			}
			continue
		}
		if strings.HasPrefix(body, "\t") {
			return secretInput{}, fmt.Errorf("line %d is indented with a tab, which YAML does not allow", n+1)
		}
		indent := len(line) - len(body)
		switch {
		case indent == 0:
			k, v, found := strings.Cut(body, ":")
			if !found {
				return secretInput{}, fmt.Errorf("line %d: expected 'key: value'", n+1)
			}
			section, childIndent, cur = yamlUnquote(k), 0, nil
			top[section] = yamlUnquote(strings.TrimSpace(v))
		case cur != nil && indent > childIndent:
			cur.lines = append(cur.lines, line[childIndent:])
		case childIndent == 0 || indent == childIndent:
			childIndent = indent
			k, v, found := strings.Cut(body, ":")
			if !found {
				return secretInput{}, fmt.Errorf("line %d: expected 'key: value'", n+1)
			}
			cur = &yamlEntry{key: yamlUnquote(k), lines: []string{strings.TrimSpace(v)}}
			nested[section] = append(nested[section], cur)
		}
	}
	if top["kind"] != "Secret" {
		return secretInput{}, fmt.Errorf("the input is a %s manifest, not a Secret", kindName(top["kind"]))
	}
	s := secretInput{typ: top["type"]}
	for _, e := range nested["metadata"] {
		switch e.key {
		case "name":
			s.name = yamlUnquote(e.lines[0])
		case "namespace":
			s.namespace = yamlUnquote(e.lines[0])
		}
	}
	values := func(section string) map[string]string {
		m := map[string]string{}
		for _, e := range nested[section] {
			m[e.key] = e.value()
		}
		return m
	}
	err := s.set(values("data"), values("stringData"))
	return s, err
}

// value joins an entry's lines: a block scalar (|) keeps its line breaks,
// a plain or quoted scalar folds them into spaces.
func (e *yamlEntry) value() string {
	first, rest := e.lines[0], e.lines[1:]
	if strings.HasPrefix(first, "|") {
		indent := -1
		for _, l := range rest {
			if t := strings.TrimLeft(l, " "); t != "" && (indent < 0 || len(l)-len(t) < indent) {
				indent = len(l) - len(t)
			}
		}
		var b strings.Builder
		for _, l := range rest {
			if len(l) >= indent && indent >= 0 {
				l = l[indent:]
			}
			b.WriteString(l + "\n")
		}
		v := strings.TrimRight(b.String(), "\n")
		if first != "|-" {
			v += "\n"
		}
		return v
	}
	parts := []string{first}
	for _, l := range rest {
		if t := strings.TrimSpace(l); t != "" {
			parts = append(parts, t)
		}
	}
	return yamlUnquote(strings.Join(parts, " "))
}

// yamlUnquote removes YAML quotes from a scalar.
func yamlUnquote(s string) string {
	s = strings.TrimSpace(s)
	switch {
	case len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"':
		if u, err := strconv.Unquote(s); err == nil {
			return u
		}
	case len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'':
		return strings.ReplaceAll(s[1:len(s)-1], "''", "'")
	}
	return s
}
