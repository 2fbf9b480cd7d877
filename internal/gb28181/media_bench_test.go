package gb28181

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// benchPS returns a program stream of the simulator's test pattern
// (H.264, 640x480, 25 fps, 10 s) and the RTP packets carrying it.
func benchPS(b *testing.B) (ps []byte, pkts [][]byte) {
	ff := testenv.NeedCommand(b, "ffmpeg")
	aus, err := encodeSimVideo(context.Background(), SimConfig{FFmpeg: ff, FPS: 25, Codec: "h264", Video: "testsrc2=size=640x480:rate=25:duration=10", lavfi: true})
	if err != nil {
		b.Fatal(err)
	}
	var seq uint16
	for i, au := range aus {
		frame := AppendPS(nil, au.data, StreamTypeH264, uint64(i)*3600, au.key)
		ps = append(ps, frame...)
		for off := 0; off < len(frame); off += rtpPayload {
			end := min(off+rtpPayload, len(frame))
			pkts = append(pkts, AppendRTP(nil, RTPPacket{PayloadType: 96, Marker: end == len(frame), Seq: seq, Timestamp: uint32(i * 3600), SSRC: 200000001, Payload: frame[off:end]}))
			seq++
		}
	}
	return ps, pkts
}

// depacketize is the receive path's work per packet without the socket:
// parse, check the SSRC, put in order, hand on a frame at a time.
func depacketize(pkts [][]byte, ssrc uint32, w io.Writer) error {
	var ro reorder
	var lost atomic.Uint64
	fw := &frameWriter{w: w}
	for _, b := range pkts {
		p, err := ParseRTP(b)
		if err != nil || p.SSRC != ssrc {
			continue
		}
		if err := ro.push(p, fw.add, &lost); err != nil {
			return err
		}
	}
	return nil
}

// ffmpegDemux times ffmpeg reading a program stream from stdin (demuxing
// it, -c copy to null) while feed writes it.
func ffmpegDemux(b *testing.B, ff string, feed func(io.Writer) error) time.Duration {
	cmd := exec.Command(ff, "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "mpeg", "-i", "pipe:0", "-c", "copy", "-f", "null", "-")
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	ferr := feed(in)
	_ = in.Close()
	if err := cmd.Wait(); err != nil || ferr != nil {
		b.Fatalf("ffmpeg: %v, feed: %v", err, ferr)
	}
	return time.Since(start)
}

// BenchmarkDepacketize measures the RTP → PS de-packetizing throughput
// alone, and ffmpeg demuxing a program stream fed through it from RTP
// packets against ffmpeg fed the same program stream bytes directly
// (the baseline), in the same run, alternating, medians of 5; it prints
// the ratio (1.0: de-packetizing costs ffmpeg's input nothing).
func BenchmarkDepacketize(b *testing.B) {
	ff := testenv.NeedCommand(b, "ffmpeg")
	ps, pkts := benchPS(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var alone, base, ours []float64
		for r := 0; r < 5; r++ {
			t0 := time.Now()
			if err := depacketize(pkts, 200000001, io.Discard); err != nil {
				b.Fatal(err)
			}
			alone = append(alone, float64(len(ps))/time.Since(t0).Seconds()/1e6)
			d := ffmpegDemux(b, ff, func(w io.Writer) error { _, err := w.Write(ps); return err })
			base = append(base, float64(len(ps))/d.Seconds()/1e6)
			d = ffmpegDemux(b, ff, func(w io.Writer) error { return depacketize(pkts, 200000001, w) })
			ours = append(ours, float64(len(ps))/d.Seconds()/1e6)
		}
		for _, s := range [][]float64{alone, base, ours} {
			sort.Float64s(s)
		}
		b.ReportMetric(alone[2], "depacketize-MB/s")
		b.ReportMetric(base[2], "baseline-MB/s")
		b.ReportMetric(ours[2], "rtp-MB/s")
		b.ReportMetric(ours[2]/base[2], "ratio")
		fmt.Printf("RTP->PS de-packetizing alone %.0f MB/s (%d packets, %.1f MB); ffmpeg demuxing PS from stdin: baseline (PS bytes written directly) %.1f MB/s, through the de-packetizer from RTP %.1f MB/s, ratio %.2f (medians of 5)\n",
			alone[2], len(pkts), float64(len(ps))/1e6, base[2], ours[2], ours[2]/base[2])
	}
}
