package main

// The krew plugin manifest (sigs.k8s.io/krew pkg/index, apiVersion v1alpha2): the fields krew's
// validation requires, and no others.

type krewPlugin struct {
	APIVersion string       `json:"apiVersion"`
	Kind       string       `json:"kind"`
	Metadata   krewMetadata `json:"metadata"`
	Spec       krewSpec     `json:"spec"`
}

type krewMetadata struct {
	Name string `json:"name"`
}

type krewSpec struct {
	Version          string         `json:"version"`
	Homepage         string         `json:"homepage"`
	ShortDescription string         `json:"shortDescription"`
	Description      string         `json:"description"`
	Platforms        []krewPlatform `json:"platforms"`
}

type krewPlatform struct {
	Selector krewSelector `json:"selector"`
	URI      string       `json:"uri"`
	Sha256   string       `json:"sha256"`
	Files    []krewFile   `json:"files"`
	Bin      string       `json:"bin"`
}

type krewSelector struct {
	MatchLabels map[string]string `json:"matchLabels"`
}

type krewFile struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// newKrewPlugin is the manifest of `kubectl pq` at tag (krew wants the leading "v").
func newKrewPlugin(tag string, platforms []krewPlatform) krewPlugin {
	return krewPlugin{
		APIVersion: "krew.googlecontainertools.github.com/v1alpha2",
		Kind:       "Plugin",
		Metadata:   krewMetadata{Name: "pq"},
		Spec: krewSpec{
			Version:          tag,
			Homepage:         "https://" + repository,
			ShortDescription: "Offline ML-DSA (post-quantum) CAs, CSRs and signing",
			Description: "kubectl pq keeps an ML-DSA (FIPS 204) root CA offline and feeds pq-issuer, the\n" +
				"cert-manager external issuer that signs with it: it creates roots and intermediates,\n" +
				"turns a CA into the Secret a PQClusterIssuer reads, generates ML-DSA and classical\n" +
				"keys and CSRs, signs CSRs offline with the controller's certificate builder, and\n" +
				"inspects certificates, CSRs, keys and Secrets, ML-DSA ones included.\n",
			Platforms: platforms,
		},
	}
}
