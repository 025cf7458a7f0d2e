// Package examples embeds the example policies and the demo site, so the
// binary runs with no files beside it.
package examples

import (
	"embed"
	"io/fs"
)

// FS holds jmir.yaml, mixi.yaml and the demo site under site/.
//
//go:embed *.yaml site
var FS embed.FS

// DefaultPolicy is the policy `steward serve` runs when none is given.
const DefaultPolicy = "mixi.yaml"

// Site returns the demo site (served at /demo/ in development).
func Site() fs.FS {
	sub, err := fs.Sub(FS, "site")
	if err != nil {
		panic(err) // the embedded directory always exists
	}
	return sub
}
