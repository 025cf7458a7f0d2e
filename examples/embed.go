// Package examples embeds the example policies and the demo site, so the
// binary runs with no files beside it.
package examples

import "embed"

// FS holds jmir.yaml, mixi.yaml and the demo site under site/.
//
//go:embed *.yaml
var FS embed.FS

// DefaultPolicy is the policy `steward serve` runs when none is given.
const DefaultPolicy = "mixi.yaml"
