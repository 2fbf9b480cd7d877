// Command sample is a minimal Tianshu device adapter: it serves the
// api/adapter/v1 protocol and plays a folder of JPEGs (the device's Address)
// as a camera, with a "motion" event every tenth frame. A vendor adapter
// replaces the folder with its SDK's calls. Tianshu starts it with
// TIANSHU_ADAPTER_ADDR=unix:///path/to.sock; see docs/device-adapter.md.
//
// Device options it understands: password (when set, the device's password
// must equal it — to show how an adapter reports auth_failed).
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	adapterv1 "github.com/tianshu-ai/tianshu/api/adapter/v1"
)

type server struct {
	adapterv1.UnimplementedAdapterServer
}

func (server) Health(context.Context, *adapterv1.HealthRequest) (*adapterv1.HealthResponse, error) {
	return &adapterv1.HealthResponse{Serving: true, Vendor: "Tianshu sample", Version: "1.0"}, nil
}

// images lists the device folder's JPEGs, sorted.
func images(dev *adapterv1.Device) ([]string, error) {
	m, _ := filepath.Glob(filepath.Join(dev.GetAddress(), "*.jpg"))
	sort.Strings(m)
	if len(m) == 0 {
		return nil, fmt.Errorf("no .jpg files in %q", dev.GetAddress())
	}
	return m, nil
}

func checkAuth(dev *adapterv1.Device) error {
	want := dev.GetOptions().GetFields()["password"].GetStringValue()
	if want != "" && dev.GetPassword() != want {
		return errors.New("wrong password")
	}
	return nil
}

func (server) Probe(_ context.Context, r *adapterv1.ProbeRequest) (*adapterv1.ProbeResponse, error) {
	if err := checkAuth(r.GetDevice()); err != nil {
		return &adapterv1.ProbeResponse{Online: false, Reason: "auth_failed", Error: err.Error()}, nil
	}
	files, err := images(r.GetDevice())
	if err != nil {
		return &adapterv1.ProbeResponse{Online: false, Reason: "unreachable", Error: err.Error()}, nil
	}
	snap, err := os.ReadFile(files[0])
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	info, _ := structpb.NewStruct(map[string]any{"vendor": "Sample", "model": "Folder camera", "images": len(files)})
	return &adapterv1.ProbeResponse{Online: true, Info: info, Snapshot: snap}, nil
}

func (server) OpenStream(r *adapterv1.OpenStreamRequest, s adapterv1.Adapter_OpenStreamServer) error {
	dev := r.GetDevice()
	if err := checkAuth(dev); err != nil {
		return s.Send(&adapterv1.StreamMessage{Kind: &adapterv1.StreamMessage_Status{Status: &adapterv1.StatusUpdate{
			State: "error", Reason: "auth_failed", Message: err.Error()}}})
	}
	fps := dev.GetFps()
	if fps <= 0 {
		fps = 5
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / fps))
	defer tick.Stop()
	for n := 0; ; n++ {
		files, err := images(dev)
		if err != nil {
			return status.Error(codes.Unavailable, err.Error())
		}
		data, err := os.ReadFile(files[n%len(files)])
		if err != nil {
			return status.Error(codes.Unavailable, err.Error())
		}
		c, err := jpeg.DecodeConfig(bytes.NewReader(data))
		if err != nil {
			continue // not a JPEG: skip it
		}
		select {
		case <-s.Context().Done():
			return nil
		case <-tick.C:
		}
		now := time.Now().UnixNano()
		if err := s.Send(&adapterv1.StreamMessage{Kind: &adapterv1.StreamMessage_Frame{Frame: &adapterv1.Frame{
			TimeUnixNano: now, Jpeg: data, Width: int32(c.Width), Height: int32(c.Height)}}}); err != nil {
			return err
		}
		if n%10 == 9 {
			data, _ := structpb.NewStruct(map[string]any{"frame": n, "file": filepath.Base(files[n%len(files)])})
			if err := s.Send(&adapterv1.StreamMessage{Kind: &adapterv1.StreamMessage_Event{Event: &adapterv1.Event{
				TimeUnixNano: now, Type: "motion", Data: data}}}); err != nil {
				return err
			}
		}
	}
}

func main() {
	addr := os.Getenv("TIANSHU_ADAPTER_ADDR")
	network, path := "unix", strings.TrimPrefix(addr, "unix://")
	if !strings.HasPrefix(addr, "unix://") {
		network = "tcp" // host:port, for running by hand
	}
	if addr == "" {
		log.Fatal("TIANSHU_ADAPTER_ADDR is not set")
	}
	l, err := net.Listen(network, path)
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer()
	adapterv1.RegisterAdapterServer(srv, server{})
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		srv.GracefulStop()
	}()
	log.Printf("sample adapter serving on %s", addr)
	if err := srv.Serve(l); err != nil {
		log.Fatal(err)
	}
}
