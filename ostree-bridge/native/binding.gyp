{
  "targets": [
    {
      "target_name": "ostree_bridge",
      "sources": ["ostree_bridge.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["<!@(pkg-config --cflags ostree-1)", "-std=c++17", "-Wno-deprecated-declarations"],
      "libraries": ["<!@(pkg-config --libs ostree-1)"]
    }
  ]
}
