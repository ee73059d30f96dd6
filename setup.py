"""Install the ``fgd_mmrazor`` package (configs, tools and tests stay out)."""
import os.path as osp

from setuptools import find_packages, setup


def get_version():
    """Read ``__version__`` without importing the package."""
    scope = {}
    with open(osp.join('fgd_mmrazor', 'version.py')) as f:
        exec(compile(f.read(), 'version.py', 'exec'), scope)
    return scope['__version__']


def parse_requirements(fname):
    """Pinned requirements, without comments."""
    with open(fname) as f:
        lines = [ln.split('#')[0].strip() for ln in f]
    return [ln for ln in lines if ln]


if __name__ == '__main__':
    setup(
        name='fgd_mmrazor',
        version=get_version(),
        description='Fine-grained feature imitation distillation '
        '(Wang et al., CVPR 2019) for object detectors, on MMRazor.',
        long_description=open('README.md').read()
        if osp.exists('README.md') else '',
        long_description_content_type='text/markdown',
        license='Apache License 2.0',
        packages=find_packages(include=['fgd_mmrazor', 'fgd_mmrazor.*']),
        python_requires='>=3.8',
        install_requires=parse_requirements('requirements/runtime.txt'),
        zip_safe=False)
