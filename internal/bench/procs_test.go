//go:build linux

package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
)

// homeDirs makes a private HOME and XDG directories and returns the engine paths a child authkeeper
// process derives from them (app.DefaultPaths), with the environment that makes it do so: an engine
// started in this process with these paths is the owner a child bridge or CLI finds. The environment
// carries this process's DBUS_SESSION_BUS_ADDRESS, so call it after the keyring is up.
func homeDirs(t *testing.T) (engine.Paths, []string) {
	t.Helper()
	home := t.TempDir()
	rt, err := os.MkdirTemp("/tmp", "akbench") // short: it holds the control socket
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rt) })
	cfg, state := filepath.Join(home, ".config"), filepath.Join(home, ".local", "state")
	paths := engine.Paths{ConfigDir: filepath.Join(cfg, "authkeeper"), StateDir: filepath.Join(state, "authkeeper"),
		RuntimeDir: filepath.Join(rt, "authkeeper")}
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "XDG_CONFIG_HOME=" + cfg, "XDG_STATE_HOME=" + state,
		"XDG_RUNTIME_DIR=" + rt, "DBUS_SESSION_BUS_ADDRESS=" + os.Getenv("DBUS_SESSION_BUS_ADDRESS")}
	return paths, env
}

// memKiB returns a /proc/<pid>/status field in KiB: VmRSS (resident now) or VmHWM (peak resident).
func memKiB(pid int, field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat's CPU times: 100 on every Linux architecture Go
// supports (the kernel exports it to user space as a constant).
const clockTick = 100

// cpuTime returns the user plus system CPU time a process has used so far, from /proc/<pid>/stat
// (fields 14 and 15, after the parenthesised command name, which may itself hold spaces).
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad CPU times %q %q", pid, f[11], f[12])
	}
	return time.Duration(utime+stime) * time.Second / clockTick, nil
}

// idle is one process observed while idle.
type idle struct {
	what   string
	window time.Duration // wall time observed
	cpu    time.Duration // CPU time used in the window
	tick   time.Duration // the CPU clock's resolution
	rssKiB int64         // VmRSS at the end of the window
	hwmKiB int64         // VmHWM: peak resident since the process started
	// switches is the growth over the window of the context switches of the process's threads: each
	// time a thread was scheduled off the CPU, i.e. roughly how often it woke up.
	switches int64
}

// cpuText is the CPU used, or "under one tick" when the clock saw none.
func (i idle) cpuText() string {
	if i.cpu == 0 {
		return fmt.Sprintf("< %v (under one tick)", i.tick)
	}
	return i.cpu.String()
}

// coreText is the CPU used as a percentage of one core, bounded by one tick when the clock saw none.
func (i idle) coreText() string {
	if i.cpu == 0 {
		return fmt.Sprintf("< %.3f%%", 100*i.tick.Seconds()/i.window.Seconds())
	}
	return fmt.Sprintf("%.3f%%", i.core())
}

// wakeups is the context switches per second of the window.
func (i idle) wakeups() float64 { return float64(i.switches) / i.window.Seconds() }

// contextSwitches sums voluntary and involuntary context switches over pid's live threads
// (/proc/<pid>/task/*/status); a thread that exits takes its count with it.
func contextSwitches(pid int) (int64, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("threads of %d: %v", pid, err)
	}
	var n int64
	for _, f := range tasks {
		data, err := os.ReadFile(f)
		if err != nil {
			continue // the thread exited
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if ok && (k == "voluntary_ctxt_switches" || k == "nonvoluntary_ctxt_switches") {
				c, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				if err != nil {
					return 0, fmt.Errorf("%s: %w", f, err)
				}
				n += c
			}
		}
	}
	return n, nil
}

// core is the CPU used as a percentage of one core.
func (i idle) core() float64 { return 100 * i.cpu.Seconds() / i.window.Seconds() }

// cpuClock reads a process's CPU time with a given resolution.
type cpuClock struct {
	read func() (time.Duration, error)
	tick time.Duration
}

// procCPU reads pid's CPU time from /proc (10 ms ticks).
func procCPU(pid int) cpuClock {
	return cpuClock{read: func() (time.Duration, error) { return cpuTime(pid) }, tick: time.Second / clockTick}
}

// selfCPU reads this process's CPU time from getrusage(2), in microseconds: finer than /proc's ticks,
// but only for the calling process.
var selfCPU = cpuClock{read: rusageSelf, tick: time.Microsecond}

// rusageSelf returns this process's user plus system CPU time.
func rusageSelf() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// observeIdle waits window while process pid does nothing asked of it and returns the CPU time cpu
// reports over the window and the process's memory at its end.
func observeIdle(t *testing.T, what string, pid int, cpu cpuClock, window time.Duration) idle {
	t.Helper()
	before, err := cpu.read()
	if err != nil {
		t.Fatal(err)
	}
	sw0, err := contextSwitches(pid)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	time.Sleep(window) // the measurement: a wall-clock window of doing nothing
	after, err := cpu.read()
	if err != nil {
		t.Fatal(err)
	}
	sw1, err := contextSwitches(pid)
	if err != nil {
		t.Fatal(err)
	}
	obs := idle{what: what, window: time.Since(start), cpu: after - before, tick: cpu.tick, switches: sw1 - sw0}
	if obs.rssKiB, err = memKiB(pid, "VmRSS"); err != nil {
		t.Fatal(err)
	}
	if obs.hwmKiB, err = memKiB(pid, "VmHWM"); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s idle %v: CPU %s (%s of a core), %.1f wake-ups/s, RSS %s (peak %s)", what, obs.window.Round(time.Millisecond),
		obs.cpuText(), obs.coreText(), obs.wakeups(), mib(obs.rssKiB), mib(obs.hwmKiB))
	return obs
}
