// Command v1server is a tianshu-v1 algorithm the process runtime tests
// package and start. It listens on 127.0.0.1:$PORT. Environment:
// EXIT_AT_ONCE=1 exits with status 3 after an error on stderr;
// NEVER_HEALTHY=1 answers 503 on /v1/health forever; ECHO_ENV=NAME prints
// NAME's value on stdout when it starts.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/tianshu-ai/tianshu/internal/algorithm/algotest"
)

func main() {
	fmt.Println("v1server starting on port", os.Getenv("PORT"))
	if name := os.Getenv("ECHO_ENV"); name != "" {
		fmt.Println("env", name, "is", os.Getenv(name))
	}
	if os.Getenv("EXIT_AT_ONCE") == "1" {
		fmt.Fprintln(os.Stderr, "fatal: model weights missing")
		os.Exit(3)
	}
	s := &algotest.V1Server{Name: "v1server", Version: "1"}
	if os.Getenv("NEVER_HEALTHY") == "1" {
		s.Unhealthy.Store(true)
	}
	log.Fatal(http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), s.Handler()))
}
