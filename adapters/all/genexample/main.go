// Command genexample writes switchboard.example.yaml from the parts of
// the config package and of every network type (go generate in
// adapters/all runs it).
package main

import (
	"flag"
	"fmt"
	"os"

	_ "github.com/switchboard-chat/switchboard/adapters/all"
	"github.com/switchboard-chat/switchboard/config"
)

func main() {
	out := flag.String("o", "switchboard.example.yaml", "file to write")
	flag.Parse()
	if err := os.WriteFile(*out, config.Example(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
