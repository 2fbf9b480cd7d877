// Package examples ships the example flows and the demo camera's photos
// inside the binary, so `tianshu serve --demo` needs nothing else.
package examples

import "embed"

// FS holds flows/*.json and demo/photos.
//
//go:embed flows/*.json demo/photos/*.jpg demo/photos/NOTICE
var FS embed.FS
