{
  # uzc_tools=1 adds the two executables (the bench's C reference sender, the tests' no-io_uring
  # launcher): set by scripts/install.mjs in a checkout of the repository and by
  # scripts/prebuild.mjs. A user's install of the npm package that finds no prebuild builds the
  # addon only.
  "variables": { "uzc_tools%": 0 },
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
    }
  ],
  "conditions": [
    ["uzc_tools==1", {
      "targets": [
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
    }]
  ]
}
