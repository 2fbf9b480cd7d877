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
	out, err := query(ctx, smi, "--query-gpu=index,name,memory.total,uuid")
	if out == nil || err != nil {
		return nil, err
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

// ProcessMemory returns the GPU memory, in bytes, that each process using a
// GPU holds (nvidia-smi's compute processes), by pid, summed over GPUs. No
// nvidia-smi means no processes and no error.
func ProcessMemory(ctx context.Context, smi string) (map[int]int64, error) {
	out, err := query(ctx, smi, "--query-compute-apps=pid,used_memory")
	if out == nil || err != nil {
		return nil, err
	}
	used := map[int]int64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "No running") {
			continue
		}
		pidS, memS, ok := strings.Cut(line, ",")
		pid, err1 := strconv.Atoi(strings.TrimSpace(pidS))
		mib, err2 := strconv.ParseInt(strings.TrimSpace(memS), 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("gpu: unexpected nvidia-smi line %q", line)
		}
		used[pid] += mib << 20
	}
	return used, sc.Err()
}

// query runs nvidia-smi (smi, or the one on PATH) with a CSV query and
// returns its output; nil and no error when there is no nvidia-smi.
func query(ctx context.Context, smi, q string) ([]byte, error) {
	if smi == "" {
		p, err := exec.LookPath("nvidia-smi")
		if err != nil {
			return nil, nil
		}
		smi = p
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, smi, q, "--format=csv,noheader,nounits").Output()
	if err != nil {
		return nil, fmt.Errorf("gpu: %s: %w", smi, err)
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}
