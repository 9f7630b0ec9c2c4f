//go:build !headless

package tray

import (
	"sync"
	"sync/atomic"

	"fyne.io/fyne/v2"
)

// mainLoop is the tray's UI goroutine: the main goroutine, which fyne requires. It starts as a plain
// loop that runs posted work and sleeps in between, so the idle tray costs nothing. fyne's own event
// loop — GLFW, which wakes 60 times a second for as long as it runs (fyne issue #2506) — starts only
// when a window or the clipboard is first needed, and from then on runs the posted work. fyne cannot
// start its loop twice in one process, so once started it runs until Quit; a hidden window keeps it
// from ending when the user closes the last visible one (fyne quits with its last window).
//
// Every func posted here, and every func handed to gui, runs on the main goroutine, in order, whether
// fyne's loop has started or not: the controller's single-goroutine ownership holds throughout.
type mainLoop struct {
	a fyne.App

	mu       sync.Mutex
	pending  []func()
	fyneOn   bool // fyne's loop runs, or starts as soon as the current batch is done
	running  bool // run has handed the main goroutine to fyne's loop
	quitting bool
	wake     chan struct{}
	// done is set by quit and when fyne's loop has ended. fyne then runs what fyne.Do is given on the
	// caller's goroutine, so posted work checks it and is dropped instead.
	done atomic.Bool
}

func newMainLoop(a fyne.App) *mainLoop { return &mainLoop{a: a, wake: make(chan struct{}, 1)} }

// post runs f on the UI goroutine. Safe from any goroutine; never blocks.
func (m *mainLoop) post(f func()) {
	m.mu.Lock()
	if m.fyneOn {
		m.mu.Unlock()
		fyne.Do(func() {
			if !m.done.Load() {
				f()
			}
		})
		return
	}
	m.pending = append(m.pending, f)
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// gui runs f with fyne's loop running, starting the loop first if need be. UI goroutine.
func (m *mainLoop) gui(f func()) {
	m.mu.Lock()
	if m.quitting {
		m.mu.Unlock()
		return
	}
	starting := !m.fyneOn
	m.fyneOn = true
	m.mu.Unlock()
	if starting {
		// Creating a window initialises GLFW, which the clipboard needs before any window is shown.
		// Windows shown before fyne's loop runs appear once run starts it, right after this batch.
		keepAlive := m.a.NewWindow("authkeeper")
		keepAlive.SetCloseIntercept(keepAlive.Hide) // never shown; see mainLoop
	}
	f()
}

// quit ends run: at once if fyne's loop never started, else by quitting fyne. UI goroutine.
func (m *mainLoop) quit() {
	m.mu.Lock()
	running := m.running
	m.quitting = true
	m.mu.Unlock()
	m.done.Store(true)
	if running {
		fyne.Do(m.a.Quit)
	}
}

// run is the UI goroutine's loop; it returns after quit. Call on the main goroutine.
func (m *mainLoop) run() {
	for {
		<-m.wake
		m.runPending()
		m.mu.Lock()
		on, quitting := m.fyneOn, m.quitting
		m.mu.Unlock()
		switch {
		case quitting:
			return
		case on:
			// Work posted from now on goes to fyne's queue; what was posted before is run first.
			m.runPending()
			m.mu.Lock()
			m.running = true
			quitting = m.quitting
			m.mu.Unlock()
			if !quitting {
				m.a.Run()
			}
			m.done.Store(true) // fyne also quits by itself, on SIGTERM or its last window
			return
		}
	}
}

// runPending runs, in order, the work posted so far. UI goroutine.
func (m *mainLoop) runPending() {
	m.mu.Lock()
	batch := m.pending
	m.pending = nil
	m.mu.Unlock()
	for _, f := range batch {
		f()
	}
}
