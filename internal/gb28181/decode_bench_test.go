package gb28181

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// decodeArgs are the decoder's arguments around its input: decode the
// video, keep nothing, report the frames decoded on stdout.
func decodeArgs(input ...string) []string {
	args := append([]string{"-hide_banner", "-nostdin", "-loglevel", "error", "-nostats", "-progress", "pipe:1"}, input...)
	return append(args, "-an", "-f", "null", "-")
}

// decoded runs cmd (an ffmpeg of decodeArgs) to its end and returns the
// frames it decoded and the CPU it used (user + system).
func decoded(cmd *exec.Cmd) (frames int, cpu time.Duration, err error) {
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "frame="); ok {
			frames, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	err = cmd.Wait()
	if cmd.ProcessState != nil {
		cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		return frames, cpu, fmt.Errorf("ffmpeg: %w: %s", err, errb.String())
	}
	return frames, cpu, nil
}

// endsClean reads a stream and ends with io.EOF however the stream ended
// (closed after the window), as the decoder sees a stream's end.
type endsClean struct{ r io.Reader }

func (e endsClean) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		err = io.EOF
	}
	return n, err
}

// selfCPU is this process's CPU time so far (user + system).
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchEnv reads a positive integer setting of the benchmark.
func benchEnv(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// BenchmarkLiveDecode measures live streams received and decoded per core
// against ffmpeg decoding the same stream from a file (the baseline), in
// one run. The video is 640×480 H.264 at 25 fps (ffmpeg's testsrc2, a key
// frame a second, as the simulator encodes it), sent by a simulated
// camera in another process. Ours: BENCH_GB_STREAMS (default 4) channels
// are invited at once, each received (RTP over UDP, SSRC check, reorder,
// PS out) and piped to its own ffmpeg decoding to null, for
// BENCH_GB_SECONDS (default 10) s; its CPU is this process's (the
// receivers, the SIP dialogs) plus the decoders'. Baseline: one ffmpeg
// decodes the simulator's program stream of the same video, packed by
// the same packer, from a file, as fast as it can. Each side's figure is
// frames decoded per CPU second over 25 fps: streams per core.
func BenchmarkLiveDecode(b *testing.B) {
	ff := testenv.NeedCommand(b, "ffmpeg")
	nStreams, seconds := benchEnv(b, "BENCH_GB_STREAMS", 4), benchEnv(b, "BENCH_GB_SECONDS", 10)
	const fps = 25
	dir := b.TempDir()
	video := filepath.Join(dir, "pattern.mp4")
	if out, err := exec.Command(ff, "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=640x480:rate=25:duration=10",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", video).CombinedOutput(); err != nil {
		b.Fatalf("ffmpeg: %v: %s", err, out)
	}
	// The baseline's file: the simulator's encoding of the video, packed
	// as it packs it for RTP.
	aus, err := encodeSimVideo(context.Background(), SimConfig{FFmpeg: ff, FPS: fps, Codec: "h264", Video: video})
	if err != nil {
		b.Fatal(err)
	}
	var ps []byte
	for i, au := range aus {
		ps = AppendPS(ps, au.data, StreamTypeH264, uint64(i)*90000/fps, au.key)
	}
	psFile := filepath.Join(dir, "pattern.ps")
	if err := os.WriteFile(psFile, ps, 0o644); err != nil {
		b.Fatal(err)
	}

	var chans []SimChannel
	pw := map[string]string{devID: "pw"}
	for i := range nStreams {
		chans = append(chans, SimChannel{ID: fmt.Sprintf("340200000013100%05d", i+1), Name: fmt.Sprint("ch", i+1)})
	}
	dirc := newTestDir(pw)
	s, err := New(Config{Addr: "127.0.0.1:0", NoMediaTimeout: 5 * time.Second}, Options{Directory: dirc})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	startSim(b, SimConfig{Server: s.Addr(), DeviceID: devID, Password: "pw", FPS: fps, Video: video, Channels: chans})
	testenv.Eventually(b, 30*time.Second, "the camera registered", func() bool { on, _ := dirc.isOnline(devID); return on })
	// Warm up: the camera's first answer waits for its encoding.
	st, err := s.Play(context.Background(), devID, chans[0].ID, false)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(st, make([]byte, 64<<10)); err != nil {
		b.Fatal(err)
	}
	_ = st.Close()

	b.ResetTimer()
	for range b.N {
		// Baseline: the file, decoded as fast as ffmpeg can.
		baseFrames, baseCPU, err := decoded(exec.Command(ff, decodeArgs("-f", "mpeg", "-i", psFile)...))
		if err != nil {
			b.Fatal(err)
		}
		if baseFrames < len(aus)*9/10 {
			b.Fatalf("the baseline decoded %d of %d frames", baseFrames, len(aus))
		}

		// Ours: nStreams live streams at once, for the window.
		type result struct {
			frames int
			cpu    time.Duration
			err    error
		}
		results := make([]result, nStreams)
		streams := make([]*Stream, nStreams)
		var wg sync.WaitGroup
		self0, t0 := selfCPU(b), time.Now()
		for i, ch := range chans {
			st, err := s.Play(context.Background(), devID, ch.ID, false)
			if err != nil {
				b.Fatal(err)
			}
			streams[i] = st
			cmd := exec.Command(ff, decodeArgs("-f", "mpeg", "-i", "pipe:0")...)
			cmd.Stdin = endsClean{st}
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := &results[i]
				r.frames, r.cpu, r.err = decoded(cmd)
			}()
		}
		time.Sleep(time.Duration(seconds) * time.Second) // the measured window
		for _, st := range streams {
			_ = st.Close()
		}
		wg.Wait()
		window, self := time.Since(t0), selfCPU(b)-self0
		var frames int
		var lost, wrong uint64
		decCPU := time.Duration(0)
		for i, r := range results {
			// A decoder whose input was cut mid-packet may complain; what
			// it decoded is still counted.
			if r.frames == 0 {
				b.Fatalf("stream %d decoded nothing: %v", i, r.err)
			}
			frames += r.frames
			decCPU += r.cpu
			d := streams[i].Diag()
			lost, wrong = lost+d.Lost, wrong+d.WrongSSRC
		}
		if decCPU == 0 { // the decoder failed on the cut: its CPU unknown
			b.Fatal("no decoder's CPU was measured")
		}
		base := float64(baseFrames) / baseCPU.Seconds() / fps
		ours := float64(frames) / (decCPU + self).Seconds() / fps
		b.ReportMetric(base, "baseline-streams/core")
		b.ReportMetric(ours, "gb28181-streams/core")
		b.ReportMetric(ours/base, "ratio")
		fmt.Printf("640x480 H.264 %d fps, streams decoded per core: baseline (ffmpeg, the PS from a file, %d frames in %.2fs CPU) %.1f; "+
			"gb28181 (%d live streams over RTP/UDP for %.1fs, %d frames, %.1f fps a stream; CPU: decoders %.2fs, receivers and SIP %.2fs; %d RTP lost, %d wrong SSRC) %.1f; ratio %.2f\n",
			fps, baseFrames, baseCPU.Seconds(), base, nStreams, window.Seconds(), frames, float64(frames)/float64(nStreams)/window.Seconds(),
			decCPU.Seconds(), self.Seconds(), lost, wrong, ours, ours/base)
	}
}
