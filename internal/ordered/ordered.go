// Package ordered runs work on several goroutines and hands the results
// on in the order the work came in: the shape of every pass over all files
// (fsck's record pass, reindex's extraction, vfs's reading of the files).
package ordered

import (
	"sync"
	"sync/atomic"
)

// Run calls work on each item produce emits, on workers goroutines, and
// consume with each item after its work, one at a time, in the order they
// were emitted; up to ahead items wait in each queue. emit returns false
// once consume has failed: produce should then stop, and its own error is
// then not reported. Run returns consume's first error, else produce's.
func Run[T any](workers, ahead int, produce func(emit func(T) bool) error, work func(T), consume func(T) error) error {
	type slot struct {
		v    T
		done chan struct{}
	}
	jobs := make(chan *slot, ahead)
	order := make(chan *slot, ahead)
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range jobs {
				work(s.v)
				close(s.done)
			}
		}()
	}
	var (
		failed   atomic.Bool
		cerr     error // consume's first error; read after consumed closes
		consumed = make(chan struct{})
	)
	go func() {
		defer close(consumed)
		for s := range order {
			<-s.done
			if cerr != nil {
				continue // drain
			}
			if err := consume(s.v); err != nil {
				cerr = err
				failed.Store(true)
			}
		}
	}()
	perr := produce(func(v T) bool {
		if failed.Load() {
			return false
		}
		s := &slot{v, make(chan struct{})}
		order <- s // the consumer waits on s.done, so s goes to the workers next
		jobs <- s
		return true
	})
	close(jobs)
	close(order)
	wg.Wait()
	<-consumed
	if cerr != nil {
		return cerr
	}
	return perr
}
