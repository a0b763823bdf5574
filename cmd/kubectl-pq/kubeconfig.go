package main

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/spf13/cobra"
	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/pq-issuer/pq-issuer/internal/buildinfo"
)

// kubeFlags choose the cluster as kubectl does. kubectl hands a plugin its
// flags untouched, so the plugin reads --kubeconfig and --context itself.
type kubeFlags struct {
	kubeconfig, context string
}

// csrAPI is what the commands use of a CertificateSigningRequest client:
// csrREST, or in tests a fake clientset's typed client, which has the same
// methods.
type csrAPI interface {
	Create(context.Context, *certificatesv1.CertificateSigningRequest, metav1.CreateOptions) (*certificatesv1.CertificateSigningRequest, error)
	List(context.Context, metav1.ListOptions) (*certificatesv1.CertificateSigningRequestList, error)
	Watch(context.Context, metav1.ListOptions) (watch.Interface, error)
}

// csrClientFunc connects to the cluster kubeFlags name; tests put a fake
// clientset in its place.
type csrClientFunc func(kubeFlags) (csrAPI, error)

// addKubeFlags adds --kubeconfig and --context, completing context names
// from the kubeconfig; when names the flags they need.
func addKubeFlags(cmd *cobra.Command, when string) *kubeFlags {
	f := &kubeFlags{}
	fs := cmd.Flags()
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", when+"path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
	fs.StringVar(&f.context, "context", "", when+"kubeconfig context to use (default: the current context)")
	if err := cmd.RegisterFlagCompletionFunc("context", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		raw, err := f.clientConfig().RawConfig()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []cobra.Completion
		for name, ctx := range raw.Contexts {
			names = append(names, cobra.CompletionWithDesc(name, ctx.Cluster))
		}
		slices.Sort(names)
		return names, cobra.ShellCompDirectiveNoFileComp
	}); err != nil {
		panic(err) // a flag the command lacks: a bug the tests show
	}
	return f
}

// clientConfig follows kubectl's loading rules: --kubeconfig, else the
// files in $KUBECONFIG, else ~/.kube/config.
func (f kubeFlags) clientConfig() clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: f.context})
}

// newCSRClient connects to the cluster f names.
func newCSRClient(f kubeFlags) (csrAPI, error) {
	cfg, err := f.clientConfig().ClientConfig()
	switch {
	case clientcmd.IsEmptyConfig(err):
		return nil, errors.New("no cluster to talk to: the kubeconfig is missing or empty; set KUBECONFIG or use --kubeconfig, as for kubectl")
	case err != nil:
		return nil, fmt.Errorf("loading the kubeconfig: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := certificatesv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	cfg.UserAgent = "kubectl-pq/" + buildinfo.Version(version)
	cfg.GroupVersion = &certificatesv1.SchemeGroupVersion
	cfg.APIPath = "/apis"
	cfg.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	client, err := rest.RESTClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", cfg.Host, err)
	}
	return csrREST{client, runtime.NewParameterCodec(scheme)}, nil
}

// csrREST makes the requests of client-go's typed CertificateSigningRequest
// client through a scheme of certificates.k8s.io/v1 alone. The generated
// clientset registers every API group, and its generic client brings
// client-go's test fakes along: either would make the binary half as large
// again or more.
type csrREST struct {
	client rest.Interface
	params runtime.ParameterCodec
}

const csrResource = "certificatesigningrequests"

func (r csrREST) Create(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, opts metav1.CreateOptions) (*certificatesv1.CertificateSigningRequest, error) {
	out := &certificatesv1.CertificateSigningRequest{}
	return out, r.client.Post().Resource(csrResource).VersionedParams(&opts, r.params).Body(csr).Do(ctx).Into(out)
}

func (r csrREST) List(ctx context.Context, opts metav1.ListOptions) (*certificatesv1.CertificateSigningRequestList, error) {
	out := &certificatesv1.CertificateSigningRequestList{}
	return out, r.client.Get().Resource(csrResource).VersionedParams(&opts, r.params).Do(ctx).Into(out)
}

func (r csrREST) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return r.client.Get().Resource(csrResource).VersionedParams(&opts, r.params).Watch(ctx)
}
