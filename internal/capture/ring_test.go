package capture

import "testing"

func TestRingSizeFor(t *testing.T) {
	tests := []struct {
		name string
		ncpu int
		want int
	}{
		{"one CPU gets the minimum", 1, 4 << 20},
		{"two CPUs", 2, 4 << 20},
		{"three CPUs round up", 3, 8 << 20},
		{"four CPUs", 4, 8 << 20},
		{"sixteen CPUs", 16, 32 << 20},
		{"many CPUs get the maximum", 512, 64 << 20},
		{"no CPU count", 0, 4 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ringSizeFor(tt.ncpu); got != tt.want {
				t.Errorf("ringSizeFor(%d) = %d, want %d", tt.ncpu, got, tt.want)
			}
		})
	}
}

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
