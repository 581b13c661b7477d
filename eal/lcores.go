package eal

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// parseLcores parses an -l core list (mapped false: lcore N runs on CPU N)
// or a --lcores map (mapped true), which adds CPU sets and groups:
//
//	map   = entry { "," entry }
//	entry = set [ "@" set ]
//	set   = N | N "-" M | "(" item { "," item } ")"
//	item  = N | N "-" M
//
// Without "@", the lcores of a single number or range each run on the CPU of
// their own number, and the lcores of a group share the whole group as their
// CPU set, as in DPDK: "(0,6)" is lcores 0 and 6, both on CPUs {0,6}.
func parseLcores(opt, v string, mapped bool) ([]Lcore, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("eal: %s %q: %s", opt, v, fmt.Sprintf(format, args...))
	}
	if v == "" {
		return nil, bad("empty; want lcore IDs like 0-3,5")
	}
	if !mapped {
		if i := strings.IndexAny(v, "()@"); i >= 0 {
			return nil, bad("%q at offset %d: -l takes numbers and ranges like 0-3,5; map lcores to CPUs with --lcores", v[i], i)
		}
	}
	s := setScanner{s: v}
	var lcores []Lcore
	for {
		ids, grouped, err := s.set("lcore", MaxLcores)
		if err != nil {
			return nil, bad("%v", err)
		}
		var cpus []int
		explicit := s.peek() == '@'
		if explicit {
			s.pos++
			if cpus, _, err = s.set("CPU", maxCPUs); err != nil {
				return nil, bad("%v", err)
			}
		}
		for _, id := range ids {
			if containsLcore(lcores, id) {
				return nil, bad("lcore %d is listed twice", id)
			}
			switch {
			case explicit:
				lcores = append(lcores, Lcore{ID: id, CPUs: slices.Clone(cpus)})
			case grouped:
				lcores = append(lcores, Lcore{ID: id, CPUs: slices.Clone(ids)})
			default:
				lcores = append(lcores, Lcore{ID: id, CPUs: []int{id}})
			}
		}
		if s.done() {
			break
		}
		if c := s.peek(); c != ',' {
			return nil, bad("unexpected %q at offset %d; entries are separated by ','", c, s.pos)
		}
		s.pos++
	}
	slices.SortFunc(lcores, func(a, b Lcore) int { return a.ID - b.ID })
	return lcores, nil
}

// setScanner reads the sets of an lcore map from left to right.
type setScanner struct {
	s   string
	pos int
}

func (s *setScanner) done() bool { return s.pos >= len(s.s) }

func (s *setScanner) peek() byte {
	if s.done() {
		return 0
	}
	return s.s[s.pos]
}

// set reads N, N-M or a parenthesised group of those; the numbers come back
// sorted without duplicates. grouped says whether it was a group.
func (s *setScanner) set(what string, limit int) (nums []int, grouped bool, err error) {
	if s.peek() != '(' {
		lo, hi, err := s.item(what, limit)
		if err != nil {
			return nil, false, err
		}
		for n := lo; n <= hi; n++ {
			nums = append(nums, n)
		}
		return nums, false, nil
	}
	open := s.pos
	s.pos++
	for {
		lo, hi, err := s.item(what, limit)
		if err != nil {
			return nil, true, err
		}
		for n := lo; n <= hi; n++ {
			nums = append(nums, n)
		}
		switch s.peek() {
		case ',':
			s.pos++
		case ')':
			s.pos++
			slices.Sort(nums)
			return slices.Compact(nums), true, nil
		case 0:
			return nil, true, fmt.Errorf("the group opened at offset %d has no ')'", open)
		default:
			return nil, true, fmt.Errorf("unexpected %q at offset %d inside a group; want ',' or ')'", s.peek(), s.pos)
		}
	}
}

// item reads N or N-M with lo <= hi < limit.
func (s *setScanner) item(what string, limit int) (lo, hi int, err error) {
	if lo, err = s.number(what, limit); err != nil {
		return 0, 0, err
	}
	if s.peek() != '-' {
		return lo, lo, nil
	}
	s.pos++
	if hi, err = s.number(what, limit); err != nil {
		return 0, 0, err
	}
	if hi < lo {
		return 0, 0, fmt.Errorf("%s range %d-%d runs backwards; write %d-%d", what, lo, hi, hi, lo)
	}
	return lo, hi, nil
}

func (s *setScanner) number(what string, limit int) (int, error) {
	start := s.pos
	for !s.done() && s.s[s.pos] >= '0' && s.s[s.pos] <= '9' {
		s.pos++
	}
	if start == s.pos {
		if s.done() {
			return 0, fmt.Errorf("ends where a %s number should follow", what)
		}
		return 0, fmt.Errorf("unexpected %q at offset %d; want a %s number", s.s[start], start, what)
	}
	n, err := strconv.Atoi(s.s[start:s.pos])
	if err != nil || n >= limit {
		return 0, fmt.Errorf("%s %s is out of range; %s numbers go from 0 to %d", what, s.s[start:s.pos], what, limit-1)
	}
	return n, nil
}

// cpuEnv is the CPUs this process may run on.
type cpuEnv struct {
	online  unix.CPUSet // CPUs the kernel has online
	allowed unix.CPUSet // the process's affinity mask
}

func currentCPUs() (cpuEnv, error) {
	var env cpuEnv
	if err := unix.SchedGetaffinity(0, &env.allowed); err != nil {
		return env, fmt.Errorf("eal: reading the CPU affinity mask: %w", err)
	}
	env.online = env.allowed // if sysfs is missing, the mask is the best knowledge
	if b, err := os.ReadFile("/sys/devices/system/cpu/online"); err == nil {
		if online, ok := parseKernelCPUList(strings.TrimSpace(string(b))); ok {
			env.online = online
		}
	}
	return env, nil
}

// parseKernelCPUList reads the kernel's CPU list format ("0-3,8").
func parseKernelCPUList(s string) (set unix.CPUSet, ok bool) {
	for _, part := range strings.Split(s, ",") {
		loS, hiS, isRange := strings.Cut(part, "-")
		lo, err1 := strconv.Atoi(loS)
		hi, err2 := lo, error(nil)
		if isRange {
			hi, err2 = strconv.Atoi(hiS)
		}
		if err1 != nil || err2 != nil || lo < 0 || hi < lo || hi >= maxCPUs {
			return unix.CPUSet{}, false
		}
		for c := lo; c <= hi; c++ {
			set.Set(c)
		}
	}
	return set, true
}

// check says why the first unusable CPU of cpus cannot be used.
func (e *cpuEnv) check(cpus []int) error {
	for _, c := range cpus {
		if !e.online.IsSet(c) {
			return fmt.Errorf("CPU %d is not online (online CPUs: %s)", c, formatSet(&e.online))
		}
		if !e.allowed.IsSet(c) {
			return fmt.Errorf("CPU %d is not in this process's CPU affinity mask (allowed CPUs: %s)", c, formatSet(&e.allowed))
		}
	}
	return nil
}

// defaultLcores gives every usable CPU below MaxLcores an lcore of its number.
func (e *cpuEnv) defaultLcores() ([]Lcore, error) {
	var lcores []Lcore
	for c := 0; c < MaxLcores; c++ {
		if e.online.IsSet(c) && e.allowed.IsSet(c) {
			lcores = append(lcores, Lcore{ID: c, CPUs: []int{c}})
		}
	}
	if len(lcores) == 0 {
		return nil, fmt.Errorf("eal: no CPU below %d is both online (%s) and allowed (%s); name lcores with --lcores, e.g. 0@%s",
			MaxLcores, formatSet(&e.online), formatSet(&e.allowed), firstCPU(&e.allowed))
	}
	return lcores, nil
}

func firstCPU(set *unix.CPUSet) string {
	for c := range maxCPUs {
		if set.IsSet(c) {
			return strconv.Itoa(c)
		}
	}
	return "N"
}

func formatSet(set *unix.CPUSet) string {
	var cpus []int
	for c := range maxCPUs {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return formatList(cpus)
}

// formatList writes sorted numbers as a list with ranges: 0-3,5.
func formatList(nums []int) string {
	if len(nums) == 0 {
		return "none"
	}
	var b strings.Builder
	for i := 0; i < len(nums); {
		j := i
		for j+1 < len(nums) && nums[j+1] == nums[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(nums[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(nums[j]))
		}
		i = j + 1
	}
	return b.String()
}
