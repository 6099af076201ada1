// Package browsertest drives a real headless Chromium from Go tests
// (through chromedp), to test the login pages as a browser shows them: with
// JavaScript off, at a phone's width, through the accessibility tree.
//
// A package whose tests use it calls Main from its TestMain and Tab from
// its tests. The browser starts when a test first asks for a tab, once per
// test binary, and Main stops it. A missing Chromium is a test failure that
// says what to install, never a skip: the pages must not pass CI by not
// being looked at.
package browsertest
