package main

import "testing"

func TestCountCPUList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"0", 1, true},
		{"0-1", 2, true},
		{"0-3,8,10-11", 7, true},
		{"", 0, false},
		{"3-1", 0, false},
		{"x", 0, false},
		{"-1", 0, false},
	} {
		if got, ok := countCPUList(tc.in); got != tc.want || ok != tc.ok {
			t.Errorf("countCPUList(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
