package gb28181

import (
	"context"
	"fmt"
	"net"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// bareRegistrar is the baseline: a sipgo server on UDP that answers every
// REGISTER 200 OK and does nothing else.
func bareRegistrar(b *testing.B) (string, func()) {
	ua, err := sipgo.NewUA()
	if err != nil {
		b.Fatal(err)
	}
	srv, _ := sipgo.NewServer(ua)
	srv.OnRegister(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.ServeUDP(conn) }()
	return conn.LocalAddr().String(), func() { _ = conn.Close(); _ = ua.Close() }
}

// benchRegister builds a REGISTER from id to the server at addr.
func benchRegister(addr, id, auth string) *sip.Request {
	host, portS, _ := net.SplitHostPort(addr)
	port := 0
	fmt.Sscan(portS, &port)
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", User: "34020000002000000001", Host: host, Port: port})
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: id, Host: "3402000000"}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: id, Host: "3402000000"}})
	exp := sip.ExpiresHeader(3600)
	req.AppendHeader(&exp)
	if auth != "" {
		req.AppendHeader(sip.NewHeader("Authorization", auth))
	}
	req.SetTransport("UDP")
	return req
}

// authorize answers a 401 to req with pass.
func authorize(res *sip.Response, req *sip.Request, id, pass string) (string, error) {
	chal, err := digest.ParseChallenge(res.GetHeader("WWW-Authenticate").Value())
	if err != nil {
		return "", err
	}
	cr, err := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: req.Recipient.Addr(), Username: id, Password: pass})
	if err != nil {
		return "", err
	}
	return cr.String(), nil
}

// registerRate sends REGISTERs from workers clients (each its own UA and
// socket) to addr, n registrations per worker, and returns REGISTER
// requests handled per second. With pass set every registration is the
// full handshake, REGISTER → 401 → REGISTER with digest → 200 (two
// requests handled); without, one REGISTER → 200.
func registerRate(b *testing.B, addr string, workers, n int, pass string) float64 {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed error
	fail := func(err error) {
		mu.Lock()
		failed = err
		mu.Unlock()
	}
	clients := make([]*sipgo.Client, workers)
	for i := range clients {
		ua, _ := sipgo.NewUA()
		defer ua.Close()
		c, err := sipgo.NewClient(ua)
		if err != nil {
			b.Fatal(err)
		}
		clients[i] = c
	}
	start := time.Now()
	for i, c := range clients {
		wg.Add(1)
		go func(c *sipgo.Client, id string) {
			defer wg.Done()
			ctx := context.Background()
			for j := 0; j < n; j++ {
				req := benchRegister(addr, id, "")
				res, err := c.Do(ctx, req)
				if err == nil && pass != "" && res.StatusCode == 401 {
					var auth string
					if auth, err = authorize(res, req, id, pass); err == nil {
						res, err = c.Do(ctx, benchRegister(addr, id, auth))
					}
				}
				if err != nil || res.StatusCode != 200 {
					fail(fmt.Errorf("register: %v %v", res, err))
					return
				}
			}
		}(c, fmt.Sprintf("340200000013200%05d", i))
	}
	wg.Wait()
	el := time.Since(start)
	if failed != nil {
		b.Fatal(failed)
	}
	per := 1
	if pass != "" {
		per = 2
	}
	return float64(workers*n*per) / el.Seconds()
}

// BenchmarkRegister measures REGISTER requests handled per second by the
// GB28181 server (full handshakes: the challenge, then the digest check,
// directory lookup, nonce bookkeeping, session update, 200 OK with Expires
// and Date) against a bare sipgo server answering 200 OK, both on UDP
// loopback in the same run, alternating A B A B A B, and prints the
// medians and their ratio. The directory is in memory, so this is the SIP
// path's cost; the platform's adds one indexed SQL lookup per request.
func BenchmarkRegister(b *testing.B) {
	const workers, per = 8, 500
	ids := map[string]string{}
	for i := 0; i < workers; i++ {
		ids[fmt.Sprintf("340200000013200%05d", i)] = "pw"
	}
	s, err := New(Config{Addr: "127.0.0.1:0"}, Options{Directory: newTestDir(ids)})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	bare, stop := bareRegistrar(b)
	defer stop()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var base, ours []float64
		for r := 0; r < 3; r++ {
			base = append(base, registerRate(b, bare, workers, per, ""))
			ours = append(ours, registerRate(b, s.Addr(), workers, per, "pw"))
		}
		sort.Float64s(base)
		sort.Float64s(ours)
		b.ReportMetric(base[1], "baseline-reg/s")
		b.ReportMetric(ours[1], "gb28181-reg/s")
		b.ReportMetric(ours[1]/base[1], "ratio")
		fmt.Printf("REGISTER requests/s: baseline (bare sipgo 200 OK) %.0f, gb28181 (401 then digest, 200) %.0f, ratio %.2f; registrations/s %.0f (medians of 3, %d workers x %d)\n",
			base[1], ours[1], ours[1]/base[1], ours[1]/2, workers, per)
	}
}
