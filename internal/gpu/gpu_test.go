package gpu

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// No NVIDIA driver runs on the CI machines, so this test stands in a
// script for nvidia-smi that prints what the real one prints for this
// query on a two-GPU node. On a GPU node, TestDetectReal checks the real one.
func TestDetectParsesNvidiaSmi(t *testing.T) {
	smi := filepath.Join(t.TempDir(), "nvidia-smi")
	script := "#!/bin/sh\nprintf '0, NVIDIA H200, 143771, GPU-1b2c\\n1, NVIDIA H200, 143771, GPU-3d4e\\n'\n"
	if err := os.WriteFile(smi, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	gpus, err := Detect(context.Background(), smi)
	if err != nil {
		t.Fatal(err)
	}
	if len(gpus) != 2 || gpus[1].Index != 1 || gpus[0].Name != "NVIDIA H200" || gpus[0].MemoryMB != 143771 || gpus[1].UUID != "GPU-3d4e" {
		t.Fatalf("gpus = %+v", gpus)
	}
	if got := Indices(gpus); len(got) != 2 || got[0] != 0 || got[1] != 1 {
		t.Fatalf("indices %v", got)
	}
	if _, err := parse([]byte("garbage\n")); err == nil {
		t.Fatal("garbage parsed")
	}
}

func TestDetectReal(t *testing.T) {
	gpus, err := Detect(context.Background(), "")
	if err != nil {
		t.Fatalf("nvidia-smi present but failing: %v", err)
	}
	t.Logf("this node has %d GPU(s): %+v", len(gpus), gpus)
}

// ProcessMemory reads nvidia-smi's compute processes (a stand-in script:
// this machine has no GPU), summing a process's use over GPUs.
func TestProcessMemoryParsesNvidiaSmi(t *testing.T) {
	smi := filepath.Join(t.TempDir(), "nvidia-smi")
	script := "#!/bin/sh\nprintf '4242, 1024\\n4242, 512\\n77, 300\\n'\n"
	if err := os.WriteFile(smi, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	used, err := ProcessMemory(context.Background(), smi)
	if err != nil {
		t.Fatal(err)
	}
	if len(used) != 2 || used[4242] != 1536<<20 || used[77] != 300<<20 {
		t.Fatalf("used = %v", used)
	}
	bad := filepath.Join(t.TempDir(), "nvidia-smi")
	if err := os.WriteFile(bad, []byte("#!/bin/sh\necho 'pid, MiB'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := ProcessMemory(context.Background(), bad); err == nil {
		t.Error("an unexpected line was taken")
	}
}
