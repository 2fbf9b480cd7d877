// Package gpu finds the node's NVIDIA GPUs. It asks nvidia-smi, which reads
// them through NVML, so the binary needs neither cgo nor the NVML headers;
// on a node without the driver it reports none.
package gpu

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// GPU is one device.
type GPU struct {
	Index    int    `json:"index"`
	Name     string `json:"name"`
	MemoryMB int    `json:"memoryMB"`
	UUID     string `json:"uuid"`
}

// Detect lists the GPUs that nvidia-smi (on PATH, or smi when given)
// reports. No nvidia-smi means no GPUs and no error; a failing one is an
// error, so a broken driver is noticed rather than silently ignored.
func Detect(ctx context.Context, smi string) ([]GPU, error) {
	if smi == "" {
		p, err := exec.LookPath("nvidia-smi")
		if err != nil {
			return nil, nil
		}
		smi = p
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, smi, "--query-gpu=index,name,memory.total,uuid", "--format=csv,noheader,nounits").Output()
	if err != nil {
		return nil, fmt.Errorf("gpu: %s: %w", smi, err)
	}
	return parse(out)
}

func parse(out []byte) ([]GPU, error) {
	var gpus []GPU
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) < 4 {
			return nil, fmt.Errorf("gpu: unexpected nvidia-smi line %q", line)
		}
		idx, err1 := strconv.Atoi(strings.TrimSpace(f[0]))
		mem, err2 := strconv.Atoi(strings.TrimSpace(f[2]))
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("gpu: unexpected nvidia-smi line %q", line)
		}
		gpus = append(gpus, GPU{Index: idx, Name: strings.TrimSpace(f[1]), MemoryMB: mem, UUID: strings.TrimSpace(f[3])})
	}
	return gpus, sc.Err()
}

// Indices returns the GPUs' indices.
func Indices(gpus []GPU) []int {
	out := make([]int, len(gpus))
	for i, g := range gpus {
		out[i] = g.Index
	}
	return out
}
