// Package pushv1 is the generated Go code of the push service (push.proto):
// the gRPC service the message gateway serves to applications. Regenerate
// with `go generate ./api/push/v1` after scripts/install-device-deps.sh has
// installed protoc and its Go plugins.
package pushv1

//go:generate sh -c "cd ../../.. && PATH=.tools/bin:$PATH protoc -I . --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative api/push/v1/push.proto"
