// Package adapterv1 is the generated Go code of the device adapter protocol
// (adapter.proto): the gRPC service a vendor adapter serves and Tianshu's
// adapter driver calls. Regenerate with `go generate ./api/adapter/v1` after
// scripts/install-device-deps.sh has installed protoc and its Go plugins.
package adapterv1

//go:generate sh -c "PATH=../../../.tools/bin:$PATH protoc -I . -I /usr/include --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative adapter.proto"
