#!/usr/bin/env python3
"""Asks a process's top-level X11 windows to close, the way a window manager's close
button does (a WM_DELETE_WINDOW client message), for the e2e harness.

WebDriver cannot do this: WebKitWebDriver ends the browser it launched with SIGKILL
when its session or last window closes, so the app's own close path never runs.
Xvfb has no window manager to send the message, hence this. libX11 through ctypes:
no package beyond what the virtual display already needs.

Usage: close-window.py PID   (exit 0: at least one window was asked; 1: none found)
"""

import ctypes
import ctypes.util
import sys

Window = ctypes.c_ulong
Atom = ctypes.c_ulong


class XClientMessageEvent(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("serial", ctypes.c_ulong),
        ("send_event", ctypes.c_int),
        ("display", ctypes.c_void_p),
        ("window", Window),
        ("message_type", Atom),
        ("format", ctypes.c_int),
        ("l", ctypes.c_long * 5),
    ]


class XEvent(ctypes.Union):
    _fields_ = [("xclient", XClientMessageEvent), ("pad", ctypes.c_long * 24)]


CLIENT_MESSAGE = 33
XA_CARDINAL = 6
NO_EVENT_MASK = 0


def load_x11():
    x11 = ctypes.cdll.LoadLibrary(ctypes.util.find_library("X11") or "libX11.so.6")
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XDefaultRootWindow.restype = Window
    x11.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
    x11.XInternAtom.restype = Atom
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XQueryTree.argtypes = [
        ctypes.c_void_p, Window, ctypes.POINTER(Window), ctypes.POINTER(Window),
        ctypes.POINTER(ctypes.POINTER(Window)), ctypes.POINTER(ctypes.c_uint),
    ]
    x11.XGetWindowProperty.argtypes = [
        ctypes.c_void_p, Window, Atom, ctypes.c_long, ctypes.c_long, ctypes.c_int, Atom,
        ctypes.POINTER(Atom), ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_ulong),
        ctypes.POINTER(ctypes.c_ulong), ctypes.POINTER(ctypes.c_void_p),
    ]
    x11.XSendEvent.argtypes = [
        ctypes.c_void_p, Window, ctypes.c_int, ctypes.c_long, ctypes.POINTER(XEvent),
    ]
    x11.XFree.argtypes = [ctypes.c_void_p]
    x11.XFlush.argtypes = [ctypes.c_void_p]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    return x11


def children(x11, display, window):
    root, parent = Window(), Window()
    kids, count = ctypes.POINTER(Window)(), ctypes.c_uint()
    if not x11.XQueryTree(display, window, ctypes.byref(root), ctypes.byref(parent),
                          ctypes.byref(kids), ctypes.byref(count)):
        return []
    found = [kids[i] for i in range(count.value)]
    if kids:
        x11.XFree(kids)
    return found


def pid_of(x11, display, window, net_wm_pid):
    actual_type, actual_format = Atom(), ctypes.c_int()
    items, after, data = ctypes.c_ulong(), ctypes.c_ulong(), ctypes.c_void_p()
    status = x11.XGetWindowProperty(
        display, window, net_wm_pid, 0, 1, False, XA_CARDINAL, ctypes.byref(actual_type),
        ctypes.byref(actual_format), ctypes.byref(items), ctypes.byref(after),
        ctypes.byref(data))
    if status != 0 or not data.value:
        return None
    pid = ctypes.cast(data, ctypes.POINTER(ctypes.c_ulong))[0] if items.value else None
    x11.XFree(data)
    return pid


def main():
    pid = int(sys.argv[1])
    x11 = load_x11()
    display = x11.XOpenDisplay(None)
    if not display:
        print("close-window: no X display", file=sys.stderr)
        return 2
    net_wm_pid = x11.XInternAtom(display, b"_NET_WM_PID", False)
    protocols = x11.XInternAtom(display, b"WM_PROTOCOLS", False)
    delete = x11.XInternAtom(display, b"WM_DELETE_WINDOW", False)
    asked = 0
    for window in children(x11, display, x11.XDefaultRootWindow(display)):
        if pid_of(x11, display, window, net_wm_pid) != pid:
            continue
        event = XEvent()
        event.xclient.type = CLIENT_MESSAGE
        event.xclient.window = window
        event.xclient.message_type = protocols
        event.xclient.format = 32
        event.xclient.l[0] = delete
        event.xclient.l[1] = 0  # CurrentTime
        x11.XSendEvent(display, window, False, NO_EVENT_MASK, ctypes.byref(event))
        asked += 1
    x11.XFlush(display)
    x11.XCloseDisplay(display)
    return 0 if asked else 1


if __name__ == "__main__":
    sys.exit(main())
