# Sourced by the scripts that run on the GPU machine (gpu_run.sh, gpu_e2e.sh, gpu_ab.sh):
#   . scripts/gpu_env.sh LIBDIR
# puts LIBDIR (the libraries device-bundle copied) and NCCL (from the machine's PyTorch
# installation; every CUDA binary links it) on LD_LIBRARY_PATH, and keeps NVLink multicast off.
nccl_dir=$(python3 -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "lib"))' 2>/dev/null)
export LD_LIBRARY_PATH=$1:${nccl_dir}:${LD_LIBRARY_PATH:-}
export NCCL_NVLS_ENABLE=0
