{
  "targets": [
    {
      "target_name": "uring_zc",
      "sources": [
        "src/native/addon.c",
        "src/native/ring.c",
        "src/native/poll.c",
        "src/native/sock.c",
        "src/native/teardown.c",
        "src/native/syscall.c",
        "src/native/file.c"
      ],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8"]
    },
    {
      "target_name": "uzc_ref_sender",
      "type": "executable",
      "sources": ["bench/ref/sender.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra"]
    },
    {
      "target_name": "uzc_no_uring",
      "type": "executable",
      "sources": ["src/native/no-uring.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra"]
    }
  ]
}
