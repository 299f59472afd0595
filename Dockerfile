# attnres container: build stage on the CUDA 13 + cuDNN devel image, runtime stage on the CUDA 13
# + cuDNN runtime image with the server, the CLI and the bundled model.
#   docker build -t attnres .
#   docker run --gpus all -p 50051:50051 attnres
# The server binds 0.0.0.0 inside the container (the container boundary is the network policy).

ARG CUDA_VERSION=13.0.0
ARG UBUNTU=ubuntu24.04

FROM nvidia/cuda:${CUDA_VERSION}-cudnn-devel-${UBUNTU} AS build
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config git \
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto \
      libabsl-dev nlohmann-json3-dev libspdlog-dev libcli11-dev libpcre2-dev libicu-dev \
      prometheus-cpp-dev libcpp-httplib-dev libgtest-dev libgmock-dev python3 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DATTNRES_TESTS=OFF \
      -DCMAKE_CUDA_ARCHITECTURES=90 \
    && ninja -C build attnres-server attnres-cli attnres-make-model
# Collect the shared libraries the binaries load, except the C runtime and CUDA's own (the
# runtime image provides those), so the runtime stage needs no -dev packages.
RUN mkdir -p /opt/attnres/bin /opt/attnres/lib \
    && cp build/bin/attnres-server build/bin/attnres-cli build/bin/attnres-make-model /opt/attnres/bin/ \
    && ldd /opt/attnres/bin/* | awk '/=> \//{print $3}' | sort -u \
       | grep -Ev '/(libc|libm|libdl|librt|libpthread|libgcc_s|libstdc\+\+|ld-linux[^/]*|libcuda|libcudart|libcublas|libcublasLt|libcudnn[^/]*|libnvrtc[^/]*|libnvJitLink)\.so' \
       | xargs -r -I{} cp -L {} /opt/attnres/lib/ \
    && cp -r models/bundled /opt/attnres/models

FROM nvidia/cuda:${CUDA_VERSION}-cudnn-runtime-${UBUNTU} AS runtime
COPY --from=build /opt/attnres /opt/attnres
ENV LD_LIBRARY_PATH=/opt/attnres/lib \
    PATH=/opt/attnres/bin:${PATH}
RUN useradd --system --uid 10001 attnres
USER attnres
EXPOSE 50051 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD ["attnres-cli", "--target", "127.0.0.1:50051", "health"]
ENTRYPOINT ["attnres-server", "--model", "/opt/attnres/models/attnres-tiny-stories", \
            "--host", "0.0.0.0", "--port", "50051", "--http-port", "8000"]
