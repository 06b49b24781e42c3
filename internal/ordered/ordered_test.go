package ordered

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	for _, workers := range []int{1, 3, 8} {
		var got []int
		err := Run(workers, 4, func(emit func(int) bool) error {
			for i := range 200 {
				if !emit(i) {
					t.Fatal("emit refused without a failure")
				}
			}
			return nil
		}, func(int) { time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond) },
			func(i int) error { got = append(got, i); return nil })
		if err != nil || len(got) != 200 {
			t.Fatalf("%d workers: %d items, %v", workers, len(got), err)
		}
		for i, v := range got {
			if v != i {
				t.Fatalf("%d workers: item %d is %d: out of order", workers, i, v)
			}
		}
	}
}

func TestRunStops(t *testing.T) {
	stop, late := errors.New("stop"), errors.New("produce saw the refusal")
	consumed, emitted := 0, 0
	err := Run(2, 2, func(emit func(int) bool) error {
		for i := range 1000 {
			if !emit(i) {
				return late
			}
			emitted++
		}
		return nil
	}, func(int) {}, func(i int) error {
		consumed++
		if i == 10 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || consumed != 11 || emitted == 1000 {
		t.Fatalf("err %v, %d consumed, %d emitted", err, consumed, emitted)
	}
	produced := errors.New("source failed")
	if err := Run(2, 2, func(emit func(int) bool) error { emit(1); return produced }, func(int) {}, func(int) error { return nil }); !errors.Is(err, produced) {
		t.Fatalf("produce's error: %v", err)
	}
}
