// Command gatehouse is a container registry and Docker token auth server in one binary.
package main

import (
	"os"

	"github.com/gatehouse-registry/gatehouse/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
