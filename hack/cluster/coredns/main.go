// Command coredns is CoreDNS with only the plugins the node tier's cluster DNS needs.
//
// The stock build links every plugin, cloud DNS providers among them; this one keeps
// what serves cluster.local from the API server and nothing that forwards a query off
// the machine (the network rule): a name outside the cluster zone gets REFUSED.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

// The order is the plugin chain's, as in CoreDNS's plugin.cfg.
func init() {
	dnsserver.Directives = []string{"bind", "ready", "health", "errors", "log", "cache", "kubernetes"}
}

func main() { coremain.Run() }
