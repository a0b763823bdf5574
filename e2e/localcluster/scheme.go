package localcluster

import (
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	trustapi "github.com/cert-manager/trust-manager/pkg/apis/trust/v1alpha1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	gwapi "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
)

// NewScheme knows every type the local control plane serves: Kubernetes', cert-manager's, the
// Gateway API's, trust-manager's and pq-issuer's.
func NewScheme() *runtime.Scheme {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(cmapi.AddToScheme(scheme))
	utilruntime.Must(gwapi.Install(scheme))
	utilruntime.Must(trustapi.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	return scheme
}
