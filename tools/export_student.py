"""Export the student of a distillation checkpoint (plain mmdet/mmyolo
checkpoint that loads with the student's own config).

    python tools/export_student.py work_dirs/x/epoch_300.pth student.pth
"""
import argparse

from fgd_mmrazor.utils.export import export_student


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='distillation (or plain) checkpoint')
    parser.add_argument('dst', help='output checkpoint')
    args = parser.parse_args()
    state = export_student(args.src, args.dst)
    print(f'wrote {args.dst}: {len(state)} tensors')


if __name__ == '__main__':
    main()
