package adapters_test

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// No protocol package imports another: what two share (the JSON of the
// web page and MQTT, signed links, backoff) lives in a neutral package.
func TestProtocolPackagesImportNoSibling(t *testing.T) {
	const module = "github.com/switchboard-chat/switchboard/"
	protocols := []string{"irc", "xmpp", "matrix", "mqtt", "webrtc"}
	for _, p := range protocols {
		files, err := filepath.Glob(filepath.Join("..", p, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no files (%v)", p, err)
		}
		for _, f := range files {
			parsed, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range parsed.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				for _, other := range protocols {
					if other != p && (path == module+other || strings.HasPrefix(path, module+other+"/")) {
						t.Errorf("%s imports %s", f, path)
					}
				}
			}
		}
	}
}
