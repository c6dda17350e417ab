package telemetry

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is what the writer writes to, read by the test while the writer's ticker may write.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	// writes counts the writes that reached it: one per flush.
	writes int
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writes++
	return b.buf.Write(p)
}

func (b *lockedBuffer) state() (string, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String(), b.writes
}

// Lines are gathered and written out together, and none is lost on Flush or Close; a line is
// written within the interval without either.
func TestBufferedWriter(t *testing.T) {
	t.Run("GathersLinesIntoOneWrite", func(t *testing.T) {
		out := &lockedBuffer{}
		w := NewBufferedWriter(out, time.Hour)
		defer w.Close()
		for range 100 {
			w.Write([]byte("a line\n"))
		}
		if got, _ := out.state(); got != "" {
			t.Fatalf("written before a flush: %d bytes", len(got))
		}
		w.Flush()
		got, writes := out.state()
		if want := strings.Repeat("a line\n", 100); got != want || writes != 1 {
			t.Errorf("got %d bytes in %d writes, want %d bytes in 1", len(got), writes, len(want))
		}
	})
	t.Run("CloseWritesWhatGathered", func(t *testing.T) {
		out := &lockedBuffer{}
		w := NewBufferedWriter(out, time.Hour)
		w.Write([]byte("last words\n"))
		w.Close()
		if got, _ := out.state(); got != "last words\n" {
			t.Errorf("after Close: %q", got)
		}
	})
	t.Run("IntervalWritesWithoutAFlush", func(t *testing.T) {
		out := &lockedBuffer{}
		w := NewBufferedWriter(out, 10*time.Millisecond)
		defer w.Close()
		w.Write([]byte("on time\n"))
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if got, _ := out.state(); got == "on time\n" {
				return
			}
		}
		t.Error("the line was not written within 5 s of a 10 ms interval")
	})
	t.Run("LargeWriteGoesStraightThrough", func(t *testing.T) {
		out := &lockedBuffer{}
		w := NewBufferedWriter(out, time.Hour)
		defer w.Close()
		big := strings.Repeat("x", 128<<10)
		w.Write([]byte(big))
		if got, _ := out.state(); len(got) != len(big) {
			t.Errorf("a 128 KiB write left %d bytes written, want all of it", len(got))
		}
	})
}
