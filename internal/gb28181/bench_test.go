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

// registerRate sends REGISTERs from workers clients (each its own UA and
// socket) to addr, n per worker, and returns REGISTERs answered 200 per
// second. With pass set, the first answer's challenge is answered and its
// Authorization reused (the nonce stays valid for minutes), so every
// measured REGISTER is checked by digest.
func registerRate(b *testing.B, addr string, workers, n int, pass string) float64 {
	type worker struct {
		c    *sipgo.Client
		ua   *sipgo.UserAgent
		auth string
		id   string
	}
	ws := make([]worker, workers)
	host, portS, _ := net.SplitHostPort(addr)
	port := 0
	fmt.Sscan(portS, &port)
	mk := func(w *worker) *sip.Request {
		req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", User: "34020000002000000001", Host: host, Port: port})
		from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: w.id, Host: "3402000000"}, Params: sip.NewParams()}
		from.Params.Add("tag", sip.GenerateTagN(8))
		req.AppendHeader(from)
		req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: w.id, Host: "3402000000"}})
		exp := sip.ExpiresHeader(3600)
		req.AppendHeader(&exp)
		if w.auth != "" {
			req.AppendHeader(sip.NewHeader("Authorization", w.auth))
		}
		req.SetTransport("UDP")
		return req
	}
	for i := range ws {
		ua, _ := sipgo.NewUA()
		c, err := sipgo.NewClient(ua)
		if err != nil {
			b.Fatal(err)
		}
		ws[i] = worker{c: c, ua: ua, id: fmt.Sprintf("340200000013200%05d", i)}
		if pass != "" {
			req := mk(&ws[i])
			res, err := c.Do(context.Background(), req)
			if err != nil || res.StatusCode != 401 {
				b.Fatalf("challenge: %v %v", res, err)
			}
			chal, err := digest.ParseChallenge(res.GetHeader("WWW-Authenticate").Value())
			if err != nil {
				b.Fatal(err)
			}
			cr, err := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: req.Recipient.Addr(), Username: ws[i].id, Password: pass})
			if err != nil {
				b.Fatal(err)
			}
			ws[i].auth = cr.String()
		}
	}
	defer func() {
		for _, w := range ws {
			_ = w.ua.Close()
		}
	}()
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	start := time.Now()
	for i := range ws {
		wg.Add(1)
		go func(w *worker) {
			defer wg.Done()
			for j := 0; j < n; j++ {
				res, err := w.c.Do(context.Background(), mk(w))
				if err != nil || res.StatusCode != 200 {
					mu.Lock()
					failed++
					mu.Unlock()
				}
			}
		}(&ws[i])
	}
	wg.Wait()
	el := time.Since(start)
	if failed > 0 {
		b.Fatalf("%d REGISTERs failed", failed)
	}
	return float64(workers*n) / el.Seconds()
}

// BenchmarkRegister measures REGISTERs handled per second by the GB28181
// server (digest check, directory lookup, session update, 200 OK with
// Expires and Date) against a bare sipgo server answering 200 OK, both on
// UDP loopback in the same run, alternating A B A B A B, and prints the
// medians and their ratio. The directory is in memory, so this is the SIP
// path's cost; the platform's adds one indexed SQL lookup.
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
		fmt.Printf("REGISTER/s: baseline (bare sipgo 200 OK) %.0f, gb28181 (digest+directory) %.0f, ratio %.2f (medians of 3, %d workers x %d)\n",
			base[1], ours[1], ours[1]/base[1], workers, per)
	}
}
